//go:build !linux

package flowsinput

import (
	"errors"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
)

var errNotSupported = errors.New("flows: the flows input reads sock_diag and /proc, which only Linux has: not supported on this OS")

func newInput(Config, *flows.Filter, input.Settings) (input.Input, error) {
	return nil, errNotSupported
}
