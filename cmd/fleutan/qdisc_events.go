package main

// The -q view still reads the qdisc input's events until the qdisc
// collector is a library with snapshots and Diff; this file goes then.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/qdisc/qdiscinput"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// qdiscChunk is the qdisc input's publish chunk: a collection is published
// in chunks of that many events and a shorter last one, so a Publish of
// fewer events ends a collection.
const qdiscChunk = qdiscinput.PublishChunk

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

// inputSource runs the qdisc input with the tool's interval as its period
// and delivers its collections.
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

// qdiscFrame reads the queue loads of the qdisc input's events.
func qdiscFrame(events []pipeline.Event) (loads []QueueLoad, qflows []QueueFlow) {
	queues := map[queueID]float64{}
	qdiscSeen := map[queueID]bool{}
	flowBytes := map[queueID]float64{}
	multiq := map[string]bool{}
	for i := range events {
		m := events[i].Fields
		if str(m, "event.dataset") != "fleutan.qdisc" {
			continue
		}
		dev := str(m, "fleutan.qdisc.device")
		q, hasQ := integer(m, "fleutan.qdisc.tx_queue")
		switch str(m, "fleutan.qdisc.scope") {
		case "qdisc":
			bytes, hasDelta := number(m, "fleutan.qdisc.delta.bytes")
			if !hasDelta {
				continue
			}
			root, _ := m.GetValue("fleutan.qdisc.root")
			kind := str(m, "fleutan.qdisc.kind")
			switch {
			case hasQ:
				multiq[dev] = true
				queues[queueID{dev, q}] += bytes
				qdiscSeen[queueID{dev, q}] = true
			case root == true && kind != "noqueue":
				queues[queueID{dev, -1}] += bytes
			}
		case "flow":
			if !hasQ {
				continue
			}
			qf := QueueFlow{Device: dev, Queue: q, Proto: str(m, "network.transport")}
			qf.Bytes, _ = number(m, "fleutan.qdisc.delta.bytes")
			if other, _ := m.GetValue("fleutan.qdisc.other"); other == true {
				qf.Other = true
				qf.OtherFlows, _ = integer(m, "fleutan.qdisc.other_flows")
			} else {
				src, dst := addrPort(m, "source"), addrPort(m, "destination")
				qf.Local, qf.Remote = src, dst
				if str(m, "network.direction") == "ingress" {
					qf.Local, qf.Remote = dst, src
				}
			}
			qflows = append(qflows, qf)
			flowBytes[queueID{dev, q}] += qf.Bytes
		}
	}
	for id, b := range queues {
		if id.queue == -1 {
			if multiq[id.dev] {
				continue
			}
			id.queue = 0
			qdiscSeen[id] = true
		}
		loads = append(loads, QueueLoad{Device: id.dev, Queue: id.queue, Bytes: b})
	}
	for id, b := range flowBytes {
		if !qdiscSeen[id] {
			loads = append(loads, QueueLoad{Device: id.dev, Queue: id.queue, Bytes: b})
		}
	}
	slices.SortFunc(loads, func(a, b QueueLoad) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Queue, b.Queue))
	})
	return loads, qflows
}

type queueID struct {
	dev   string
	queue int
}

func addrPort(m pipeline.M, prefix string) netip.AddrPort {
	a, err := netip.ParseAddr(str(m, prefix+".ip"))
	if err != nil {
		return netip.AddrPort{}
	}
	p, _ := integer(m, prefix+".port")
	if p < 0 || p > 65535 {
		p = 0
	}
	return netip.AddrPortFrom(a, uint16(p))
}

func str(m pipeline.M, key string) string {
	v, _ := m.GetValue(key)
	s, _ := v.(string)
	return s
}

// number reads a numeric field as the inputs put it (Go integer and float
// types) or as JSON fixtures decode it (json.Number, float64).
func number(m pipeline.M, key string) (float64, bool) {
	v, ok := m.GetValue(key)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		return f, err == nil
	}
	return 0, false
}

func integer(m pipeline.M, key string) (int, bool) {
	f, ok := number(m, key)
	if !ok || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}
