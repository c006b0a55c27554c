// Package input defines what every input implements and what the agent
// hands it. Each input lives in its own folder (input/flows, ...); the
// agent's explicit registry lists their factories.
package input

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// Input collects one dataset until ctx ends. Run returns nil on a clean stop
// and an error only when the input cannot go on; a failing collection
// inside a period is logged and counted, not returned.
type Input interface {
	Run(ctx context.Context, out pipeline.Publisher) error
}

// Settings is what the program, not the user, provides to an input.
type Settings struct {
	Logger *slog.Logger
	// ProcRoot and SysRoot are the /proc and /sys mounts; tests point them
	// at fixture trees, containers at the host's mounts.
	ProcRoot string
	SysRoot  string
	// DataPath is path.data, for state an input keeps across restarts.
	DataPath string
	// Metrics receives the input's own counters (nil in some tests).
	Metrics *pipeline.Metrics
	// Latest, when set (the local query API is on), receives a copy of
	// each collection's snapshot under the input's type.
	Latest *Latest
	// Cores, shared by every input of an agent, carries the cpu input's
	// per-process core distribution to the flows input's rollups.
	Cores *ProcessCores
}

// Factory builds an input from its config section: the list entry under
// fleutanbeat.inputs without the keys the agent owns (type, enabled,
// processors). It decodes strictly and runs the Config's Validate, returning
// errors positioned with Raw.Locate. It must not start goroutines: Run does.
type Factory func(cfg config.Raw, s Settings) (Input, error)

// Periodic calls collect at once and then on every tick of period, until
// ctx ends (nil) or collect fails (its error). A ticker keeps the schedule
// anchored to the start: a slow collection delays one tick, it does not
// shift the following ones. collect returns an error only when it cannot
// go on; an error after ctx ended counts as a clean stop.
func Periodic(ctx context.Context, period time.Duration, collect func(context.Context) error) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := collect(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			// select picks at random when a tick fell due during a
			// slow collection and ctx ended too: no collection after
			// the end.
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

// Counters are what every input counts on /stats, under input.<type>:
// collections (periods completed), events published, and errors
// (collections or parts of one that failed and were logged). An input
// adds its own with Metrics.Counter("input.<type>.<name>"), or
// Metrics.Text for a word such as the method in use.
type Counters struct {
	Collections, Events, Errors *atomic.Int64
}

// NewCounters registers input.<typ>.{collections,events,errors} in m; a nil
// m (tests) gets a registry of its own.
func NewCounters(m *pipeline.Metrics, typ string) Counters {
	if m == nil {
		m = pipeline.NewMetrics()
	}
	p := "input." + typ + "."
	return Counters{
		Collections: m.Counter(p + "collections"),
		Events:      m.Counter(p + "events"),
		Errors:      m.Counter(p + "errors"),
	}
}
