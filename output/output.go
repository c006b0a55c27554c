// Package output defines what the agent needs from an output plugin. Each
// output lives in its own folder (output/file, ...); the agent's explicit
// registry lists their factories. Exactly one output is active.
package output

import (
	"context"
	"log/slog"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// Settings is what the program, not the user, provides to an output.
type Settings struct {
	// Logger already carries output=NAME (the agent adds it once); an
	// output that added it again would write the key twice per line.
	Logger *slog.Logger
	// Beat names the agent for outputs that tag events (Logstash
	// @metadata.beat) and set user agents.
	Beat    string
	Version string
	// DataPath is path.data; relative output paths stay relative to the
	// working directory as in Beats.
	DataPath string
	// Metrics receives the output's own counters (nil in some tests).
	Metrics *pipeline.Metrics
	// Setup is the `setup` section, for outputs that prepare their
	// destination (Elasticsearch index templates: setup.template).
	Setup config.Raw
	// CheckOnly says the output is built to check its configuration
	// (test config, export ...): it must create no file or directory and
	// open no connection. Only `run` builds outputs for real.
	CheckOnly bool
}

// Checker is implemented by clients that can tell, without side effects,
// whether they could deliver (`test output`): a file output checks that
// its directory can be created or written.
type Checker interface {
	Check() error
}

// Prober is implemented by clients that can learn at start, from the
// server's answer, that they can never deliver to it (a server of another
// product than the output's): `run` stops on that error instead of
// retrying forever. A server that does not answer is no reason to stop.
type Prober interface {
	Probe(ctx context.Context) error
}

// Group is a configured output: its clients each consume batches
// concurrently (workers), at most BatchSize events per batch.
type Group struct {
	Clients   []pipeline.Output
	BatchSize int
	// FlushTimeout, when set, is how long the queue waits to fill a batch
	// (output.elasticsearch.flush_interval); it overrides
	// queue.mem.flush.timeout.
	FlushTimeout time.Duration
	// Namespace, when set, is data_stream.namespace on every event. The
	// pipeline writes it before encoding, since outputs see encoded events.
	Namespace string
}

// Factory builds an output from its `output.NAME` section (without the
// `enabled` key, which the loader consumes). It decodes strictly and runs
// the Config's Validate, returning errors positioned with Raw.Locate.
type Factory func(cfg config.Raw, s Settings) (Group, error)
