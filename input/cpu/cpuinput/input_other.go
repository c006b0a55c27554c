//go:build !linux

package cpuinput

import (
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/cpu"
)

func newInput(Config, input.Settings) (input.Input, error) {
	return nil, cpu.ErrNotSupported
}
