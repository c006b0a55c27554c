//go:build !linux

package qdisc

import "github.com/fleutan/fleutanbeat/input"

func newInput(Config, input.Settings) (input.Input, error) {
	return nil, errNotSupported
}
