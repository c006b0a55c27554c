package benchmark

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/flows/flowsinput"
	"github.com/fleutan/fleutanbeat/input/process"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// Dataset is the event.dataset of this input.
const Dataset = "fleutan.benchmark"

// chunk is how many events go to the queue in one Publish call.
const chunk = 256

// New is the input.Factory of the benchmark input.
func New(raw config.Raw, s input.Settings) (input.Input, error) {
	c := DefaultConfig()
	if err := raw.DecodeValid(&c); err != nil {
		return nil, err
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return &Input{cfg: c, log: s.Logger, n: input.NewCounters(s.Metrics, "benchmark")}, nil
}

// Input publishes the synthetic events.
type Input struct {
	cfg Config
	log *slog.Logger
	n   input.Counters
	// now is the clock (tests pin it).
	now func() time.Time
}

// Run publishes Count events (or until ctx ends) at EPS, and returns nil
// once they are all in the queue.
func (in *Input) Run(ctx context.Context, out pipeline.Publisher) error {
	now := in.now
	if now == nil {
		now = time.Now
	}
	fl := syntheticFlows(in.cfg.Flows)
	in.log.Info("benchmark input: publishing synthetic flow events", "count", in.cfg.Count, "eps", in.cfg.EPS, "flows", len(fl))
	start := now()
	var sent int64
	var last time.Time
	buf := make([]pipeline.Event, 0, chunk)
	b := pipeline.NewBuilder(chunk*20, chunk*90)
	for round := 0; ; round++ {
		// Strictly increasing round timestamps: with the flow as series,
		// every event gets an id of its own.
		ts := now()
		if !ts.After(last) {
			ts = last.Add(time.Microsecond)
		}
		last = ts
		times := input.Times{Window: time.Second, Collection: time.Millisecond}
		for i := range fl {
			if in.cfg.Count > 0 && sent+int64(len(buf)) >= in.cfg.Count {
				break
			}
			f := &fl[i]
			f.TCP.BytesAcked += 9000
			f.TCP.BytesReceived += 2000
			f.TCP.SegsOut += 7
			f.TCP.SegsIn += 2
			e := flowsinput.BuildEvent(b, f, flows.FlowDelta{OK: true, Delta: flows.Delta{BytesIn: 2000, BytesOut: 9000, SegsIn: 2, SegsOut: 7}}, ts, times)
			e.Fields["event"] = b.Object(
				pipeline.String("dataset", Dataset),
				pipeline.Int64("duration", times.Window.Nanoseconds()),
				pipeline.String("kind", "metric"),
				pipeline.String("module", "fleutan"),
			)
			buf = append(buf, e)
			if len(buf) == chunk {
				if err := in.publish(ctx, out, buf, start, sent, now); err != nil || ctx.Err() != nil {
					return err
				}
				sent += int64(len(buf))
				buf = buf[:0]
				b.Reset()
			}
		}
		if len(buf) > 0 {
			if err := in.publish(ctx, out, buf, start, sent, now); err != nil || ctx.Err() != nil {
				return err
			}
			sent += int64(len(buf))
			buf = buf[:0]
			b.Reset()
		}
		in.n.Collections.Add(1)
		if in.cfg.Count > 0 && sent >= in.cfg.Count {
			in.log.Info("benchmark input: done", "events", sent, "took", time.Since(start).Round(time.Millisecond).String())
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// publish waits until the rate allows events sent+len(evs) (when EPS is
// set), then hands them to the queue. When ctx ends first it returns nil
// and the caller stops.
func (in *Input) publish(ctx context.Context, out pipeline.Publisher, evs []pipeline.Event, start time.Time, sent int64, now func() time.Time) error {
	if in.cfg.EPS > 0 {
		due := start.Add(time.Duration(float64(sent+int64(len(evs))) / float64(in.cfg.EPS) * float64(time.Second)))
		if d := due.Sub(now()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
	if err := out.Publish(ctx, evs...); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("benchmark: publish: %w", err)
	}
	in.n.Events.Add(int64(len(evs)))
	return nil
}

// syntheticFlows are n established outbound TCP flows of one process from
// 10.0.0.1 to 10.0.0.2:443 (documentation-style addresses; nothing is
// sent anywhere), each with its own local port and inode.
func syntheticFlows(n int) []flows.Flow {
	p := &process.Process{PID: 4242, PPID: 1, Name: "bench-client", Executable: "/usr/bin/bench-client",
		Args: []string{"bench-client", "--target", "10.0.0.2:443"}, UID: 1000, User: "bench"}
	out := make([]flows.Flow, n)
	for i := range out {
		out[i] = flows.Flow{
			Netns: 4026531840, Family: flows.FamilyIPv4, Protocol: flows.ProtocolTCP, State: 1,
			Local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 1}), uint16(10000+i%50000)),
			Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 50000), 2}), 443),
			Inode:  uint32(100000 + i), UID: 1000, Direction: flows.Outbound, Cookie: uint64(i + 1),
			Process: p,
			HasTCP:  true,
			TCP: flows.TCPInfo{RTTMicros: 250, RTTVarMicros: 30, MinRTTMicros: 180, Cwnd: 10, Ssthresh: 0x7fffffff,
				MSS: 1448, SegsIn: 100, SegsOut: 200, BytesAcked: 100001, BytesReceived: 23457, BytesSent: 100000,
				DeliveryRate: 100_000_000, PacingRate: 200_000_000},
			Congestion: "cubic",
			FirstSeen:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		}
	}
	return out
}
