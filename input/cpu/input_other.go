//go:build !linux

package cpu

import (
	"errors"

	"github.com/fleutan/fleutanbeat/input"
)

var errNotSupported = errors.New("cpu: the cpu input reads /proc, sock_diag and eBPF maps, which only Linux has: not supported on this OS")

func newInput(Config, input.Settings) (input.Input, error) {
	return nil, errNotSupported
}
