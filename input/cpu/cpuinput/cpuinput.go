// Package cpuinput is the cpu input (dataset fleutan.cpu): it runs the
// cpu collector (package cpu) once a period, selects the network-active
// processes and turns the collector's usage into events.
package cpuinput

import (
	"log/slog"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
)

// New is the input.Factory of the cpu input.
func New(cfg config.Raw, s input.Settings) (input.Input, error) {
	c := DefaultConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return nil, err
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.ProcRoot == "" {
		s.ProcRoot = "/proc"
	}
	return newInput(c, s)
}
