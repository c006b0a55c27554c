package rdmainput

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/rdma"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// New is the input.Factory of the rdma input.
func New(cfg config.Raw, s input.Settings) (input.Input, error) {
	c := DefaultConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return nil, err
	}
	return newInput(c, s), nil
}

func newInput(c Config, s input.Settings) *rdmaInput {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return &rdmaInput{cfg: c, log: s.Logger, latest: s.Latest, n: input.NewCounters(s.Metrics, "rdma"),
		window: input.Window{Period: c.Period.D()},
		opts:   rdma.Options{ProcRoot: s.ProcRoot, NoCounters: !c.Counters, Logger: s.Logger}}
}

type rdmaInput struct {
	cfg  Config
	log  *slog.Logger
	opts rdma.Options
	coll *rdma.Collector
	prev rdma.Snapshot
	// latest receives each collection for the query API (nil while it
	// is off).
	latest *input.Latest
	n      input.Counters
	window input.Window
	// absent is what was last said about RDMA missing ("" once devices
	// were seen), so that it is said once, not every period.
	absent string
}

// Run collects at once and then every period.
func (in *rdmaInput) Run(ctx context.Context, out pipeline.Publisher) error {
	defer func() {
		if in.coll != nil {
			_ = in.coll.Close()
		}
	}()
	return input.Periodic(ctx, in.cfg.Period.D(), func(ctx context.Context) error {
		evs := in.collect(ctx)
		in.n.Collections.Add(1)
		if len(evs) == 0 {
			return nil
		}
		if err := out.Publish(ctx, evs...); err != nil {
			return fmt.Errorf("rdma: publish: %w", err)
		}
		in.n.Events.Add(int64(len(evs)))
		return nil
	})
}

// quiet logs msg once until the situation changes.
func (in *rdmaInput) quiet(msg string, args ...any) {
	if in.absent != msg {
		in.absent = msg
		in.log.Info(msg, args...)
	}
}

// collect takes a snapshot and returns the period's events.
func (in *rdmaInput) collect(ctx context.Context) []pipeline.Event {
	begin := time.Now()
	if in.coll == nil {
		c, err := rdma.New(in.opts)
		if errors.Is(err, rdma.ErrNotSupported) {
			// A module may be loaded later: try again next period.
			in.quiet("rdma: no RDMA in this kernel (no NETLINK_RDMA); nothing to report", "error", err)
			// For the query API that is a collection without devices,
			// as on a kernel with RDMA but no device.
			now := time.Now()
			in.latest.Set("rdma", input.Collection{Time: now, Snapshot: rdma.Snapshot{Time: now}})
			return nil
		}
		if err != nil {
			in.n.Errors.Add(1)
			in.log.Warn("rdma: opening the RDMA netlink socket failed", "error", err)
			return nil
		}
		in.coll = c
	}
	snap, err := in.coll.Collect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		in.n.Errors.Add(1)
		in.log.Warn("rdma: collection incomplete", "error", err)
		if snap.Time.IsZero() {
			return nil
		}
	}
	// Diff and the events only read the snapshot: it can be shared.
	in.latest.Set("rdma", input.Collection{Time: snap.Time, Snapshot: snap})
	if len(snap.Devices) == 0 && len(in.prev.QPs) == 0 {
		in.quiet("rdma: no RDMA devices; nothing to report until one appears")
		in.prev = snap
		return nil
	}
	in.absent = ""
	d := rdma.Diff(in.prev, snap)
	first := in.prev.Time.IsZero()
	in.prev = snap
	times := input.Times{Window: in.window.Next(snap.Time), Collection: time.Since(begin)}
	return events(d, snap, first, in.cfg, times)
}
