//go:build !linux

package qdiscinput

import (
	"errors"

	"github.com/fleutan/fleutanbeat/input"
)

var errNotSupported = errors.New("qdisc: the qdisc input reads rtnetlink traffic control dumps, which only Linux has: not supported on this OS")

func newInput(Config, input.Settings) (input.Input, error) {
	return nil, errNotSupported
}
