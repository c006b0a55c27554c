package processor

import (
	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// dropEvent drops every event it sees; with `when` (the usual case) only the
// matching ones. Without `when` it drops everything, as in Beats.
type dropEvent struct{}

func newDropEvent(cfg config.Raw, _ Settings) (pipeline.Processor, error) {
	var none struct{}
	if err := cfg.Decode(&none); err != nil {
		return nil, err
	}
	return dropEvent{}, nil
}

func (dropEvent) Run(*pipeline.Event) (*pipeline.Event, error) { return nil, nil }
func (dropEvent) String() string                               { return "name=drop_event" }
