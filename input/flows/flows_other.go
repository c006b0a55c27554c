//go:build !linux

package flows

import (
	"errors"

	"github.com/fleutan/fleutanbeat/input"
)

var errNotSupported = errors.New("flows: the flows input reads sock_diag and /proc, which only Linux has: not supported on this OS")

func newInput(Config, *filter, input.Settings) (input.Input, error) {
	return nil, errNotSupported
}
