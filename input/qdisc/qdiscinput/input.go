package qdiscinput

import (
	"log/slog"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
)

// New is the input.Factory of the qdisc input.
func New(cfg config.Raw, s input.Settings) (input.Input, error) {
	c := DefaultConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return nil, err
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return newInput(c, s)
}

// PublishChunk bounds the events built before handing them to the queue.
// A collection is published in chunks of this many events and a shorter
// last one (all with the collection's timestamp); cmd/fleutan relies on it
// to find where a collection ends until it renders from snapshots.
const PublishChunk = 1024
