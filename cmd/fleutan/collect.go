package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/cpu/cpuinput"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/flows/flowsinput"
	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// qdiscChunk is the qdisc input's publish chunk: a collection is published
// in chunks of that many events and a shorter last one, so a Publish of
// fewer events ends a collection.
const qdiscChunk = qdisc.PublishChunk

// batchPublisher hands each Publish of an input to the sampling loop.
type batchPublisher chan []pipeline.Event

func (p batchPublisher) Publish(ctx context.Context, events ...pipeline.Event) error {
	select {
	case p <- pipeline.CloneEvents(events): // the input may reuse events once Publish returns
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// inputSource runs an input of the agent (cpu, qdisc) with the tool's
// interval as its period and delivers its collections.
type inputSource struct {
	name    string
	batches batchPublisher
	done    chan error
	// pending is the start of the next collection, read while looking for
	// the end of the current one.
	pending []pipeline.Event
}

// startInput builds an input from YAML, as the agent does, and runs it
// until ctx ends.
func startInput(ctx context.Context, name string, factory input.Factory, yml string, log *slog.Logger) (*inputSource, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(yml), &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	in, err := factory(config.NewRaw(doc.Content[0], "fleutan", name), input.Settings{Logger: log})
	if err != nil {
		return nil, err
	}
	s := &inputSource{name: name, batches: make(batchPublisher), done: make(chan error, 1)}
	go func() { s.done <- in.Run(ctx, s.batches) }()
	return s, nil
}

// next waits for the input's next complete collection. It returns nil
// events when none came within wait (an input that found nothing to
// report publishes nothing).
func (s *inputSource) next(ctx context.Context, wait time.Duration) ([]pipeline.Event, error) {
	events := s.pending
	s.pending = nil
	if len(events) > 0 && len(events)%qdiscChunk != 0 {
		return events, nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case err := <-s.done:
			if ctx.Err() != nil {
				// Ctrl-C: the input stopped because ctx ended, and select
				// may see that before ctx.Done. A clean stop.
				return nil, nil
			}
			if err == nil {
				err = errors.New("stopped")
			}
			return nil, fmt.Errorf("%s input: %w", s.name, err)
		case <-timer.C:
			return events, nil
		case b := <-s.batches:
			if len(b) == 0 {
				continue
			}
			if len(events) > 0 && !b[0].Timestamp.Equal(events[0].Timestamp) {
				// A collection of exactly n chunks ended with a full one.
				s.pending = b
				return events, nil
			}
			events = append(events, b...)
			if len(b) < qdiscChunk {
				return events, nil
			}
		}
	}
}

// runFlows samples every interval and prints the view (or the events)
// until ctx ends or o.count intervals were shown.
func runFlows(ctx context.Context, o *flowsOptions, stdout io.Writer, st Style, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	period := fmt.Sprintf("period: %dms\n", o.interval.Milliseconds())

	var src *inputSource
	var err error
	switch o.view {
	case viewCPUAssoc, viewCPUGen:
		src, err = startInput(ctx, "cpu", cpuinput.New, period+"processes: network\nmethod: auto\n", log)
	case viewQdisc:
		src, err = startInput(ctx, "qdisc", qdisc.New, period+"flow_attribution: auto\n", log)
	}
	if err != nil {
		return err
	}
	var coll *flows.Collector
	var prev flows.Snapshot
	window := input.Window{Period: o.interval}
	if o.view != viewQdisc {
		if coll, err = flows.New(flows.Options{Logger: log}); err != nil {
			return err
		}
		defer coll.Close()
		// The first collection is the reference for the deltas of the
		// first interval.
		window.Next(time.Now())
		if prev, err = coll.Collect(ctx); err != nil {
			return err
		}
	}
	if o.view == viewQdisc {
		// The qdisc input collects once at start: counters without
		// deltas, the reference for the first interval.
		if _, err := src.next(ctx, o.interval+5*time.Second); err != nil {
			return err
		}
	}

	// An input that publishes nothing (no devices, no processes) must not
	// stall the tool: after a generous wait the interval is shown empty.
	wait := 2*o.interval + 5*time.Second
	var ticker *time.Ticker
	if src == nil {
		ticker = time.NewTicker(o.interval)
		defer ticker.Stop()
	}
	var line []byte
	for n := 0; o.count == 0 || n < o.count; n++ {
		var events []pipeline.Event
		if src != nil {
			if events, err = src.next(ctx, wait); err != nil {
				return err
			}
		} else {
			select {
			case <-ctx.Done():
			case <-ticker.C:
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if coll != nil {
			start := time.Now()
			snap, err := coll.Collect(ctx)
			fl := snap.Flows
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if len(fl) == 0 {
					return err
				}
				log.Warn(err.Error())
			}
			deltas := flows.Diff(prev, snap)
			if !snap.Time.IsZero() {
				prev = snap
			}
			times := input.Times{Window: window.Next(start), Collection: time.Since(start)}
			fevents := make([]pipeline.Event, 0, len(fl)+len(events))
			for i := range fl {
				fevents = append(fevents, flowsinput.Event(&fl[i], deltas[i], start, times))
			}
			events = append(fevents, events...)
		}
		if o.json {
			for i := range events {
				line = codec.AppendEvent(line[:0], &events[i], codec.Options{})
				line = append(line, '\n')
				if _, err := stdout.Write(line); err != nil {
					return err
				}
			}
			continue
		}
		fr := buildFrame(events)
		text := render(&fr, o, st)
		if n > 0 {
			text = "\n" + text
		}
		if _, err := io.WriteString(stdout, text); err != nil {
			return err
		}
	}
	return nil
}
