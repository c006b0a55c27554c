package cpu

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
