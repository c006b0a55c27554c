package qdiscinput

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/fleutan/fleutanbeat/input/qdisc"
	"github.com/fleutan/fleutanbeat/input/qdisc/internal/qdisctest"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func findSample(samples []Sample, scope qdisc.Scope, dev string, match func(*Sample) bool) *Sample {
	for i := range samples {
		s := &samples[i]
		if s.Scope == scope && s.Device.Name == dev && match(s) {
			return s
		}
	}
	return nil
}

func TestMQPerQueueDeltasAndFlowAttribution(t *testing.T) {
	for _, method := range []string{qdisc.MethodTracepoint, qdisc.MethodRawTracepoint} {
		t.Run(method, func(t *testing.T) { testMQ(t, method) })
	}
}

func testMQ(t *testing.T, method string) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t), nstest.New(t)
	nstest.VethPair(t, a, b, "vq0", 4, "10.77.0.1", "10.77.0.2")
	a.Run(t, "tc", "qdisc", "add", "dev", "vq0", "root", "handle", "1:", "mq")
	// XPS: CPU 0 sends on queue 0, CPU 1 on queue 1.
	a.Run(t, "sh", "-c", "echo 1 > /sys/class/net/vq0/queues/tx-0/xps_cpus && echo 2 > /sys/class/net/vq0/queues/tx-1/xps_cpus && echo 0 > /sys/class/net/vq0/queues/tx-2/xps_cpus && echo 0 > /sys/class/net/vq0/queues/tx-3/xps_cpus")

	cfg := DefaultConfig()
	cfg.Namespaces = NamespacesAll
	cfg.FlowAttribution = AttributionEBPF
	in := newQdiscInput(cfg, input.Settings{}, qdisctest.Namespaces(t, a, b))
	in.openXmit = func() (*qdisc.XmitCounter, error) {
		return qdisc.OpenXmitCounter(qdisc.XmitOptions{Methods: []string{method}})
	}
	if err := in.startAttribution(); err != nil {
		t.Fatal(err)
	}
	defer in.close()
	if in.xmit.Method() != method {
		t.Fatalf("attached by %s, want %s", in.xmit.Method(), method)
	}
	ctx := context.Background()
	if _, _, err := in.sample(ctx); err != nil {
		t.Fatal(err)
	}

	type send struct {
		cpu, port, count, size int
	}
	sends := []send{{0, 5000, 30, 1000}, {1, 5001, 20, 333}}
	specs := make([]qdisctest.SendSpec, len(sends))
	for i, s := range sends {
		specs[i] = qdisctest.SendSpec{CPU: s.cpu, Dst: fmt.Sprintf("10.77.0.2:%d", s.port), Count: s.count, Size: s.size}
	}
	senders := qdisctest.StartSenders(t, a, specs...)
	snap, deltas, err := in.sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	samples, fs := samples(snap, deltas), snap.QueueFlows

	var total uint64
	child := qdisctest.DefaultQdisc(t)
	for q := range 4 {
		s := findSample(samples, qdisc.ScopeQdisc, "vq0", func(s *Sample) bool { return s.TxQueue == q })
		if s == nil {
			t.Fatalf("no qdisc for tx queue %d", q)
		}
		var want qdisc.Counters
		if q < len(sends) {
			want = qdisc.Counters{Bytes: uint64(sends[q].count) * qdisctest.UDPFrame(sends[q].size), Packets: uint64(sends[q].count)}
		}
		if s.Kind != child || s.Parent != 1<<16|uint32(q+1) || !s.OK || s.Delta != want {
			t.Errorf("queue %d: kind %s parent %s delta %+v (has %v), want %s 1:%d %+v", q, s.Kind, qdisc.FormatHandle(s.Parent), s.Delta, s.OK, child, q+1, want)
		}
		total += want.Bytes
	}
	root := findSample(samples, qdisc.ScopeQdisc, "vq0", func(s *Sample) bool { return s.Root() })
	if root != nil && !reflect.DeepEqual(root.Device.XPS, []string{"1", "2", "0", "0"}) {
		t.Errorf("XPS masks %q, want [1 2 0 0]", root.Device.XPS)
	}
	if root == nil || root.Kind != "mq" || root.TxQueue != -1 || root.Delta.Bytes != total || root.Device.TxQueues != 4 {
		t.Errorf("mq root: %+v, want delta bytes %d", root, total)
	}

	for i, s := range sends {
		var got []qdisc.QueueFlow
		for _, f := range fs {
			if f.Device.Name == "vq0" && !f.Other && f.Remote.Port() == uint16(s.port) {
				got = append(got, f)
			}
		}
		if len(got) != 1 {
			t.Fatalf("flow to port %d: %d flow samples, want 1: %+v", s.port, len(got), fs)
		}
		f := got[0]
		wantBytes := uint64(s.count) * qdisctest.UDPFrame(s.size)
		if f.TxQueue != s.cpu || f.Bytes != wantBytes || f.Packets != uint64(s.count) || f.Local.String() != senders[i].Local {
			t.Errorf("flow to port %d: queue %d bytes %d packets %d local %s, want queue %d bytes %d packets %d local %s",
				s.port, f.TxQueue, f.Bytes, f.Packets, f.Local, s.cpu, wantBytes, s.count, senders[i].Local)
		}
		if f.Flow == nil || f.Flow.Process == nil || f.Flow.Process.PID != senders[i].Cmd.Process.Pid {
			t.Errorf("flow to port %d: process %+v, want pid %d (sample %+v)", s.port, f.Flow, senders[i].Cmd.Process.Pid, f)
			for _, x := range fs {
				t.Logf("  queue flow %d %s %s ino %d flow %+v", x.Protocol, x.Local, x.Remote, x.Inode, x.Flow)
			}
		}
	}
}

func TestAttributionAutoFallsBackWithOneLogLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for _, tt := range []struct {
		mode    string
		wantErr bool
		lines   int
	}{{AttributionAuto, false, 1}, {AttributionEBPF, true, 0}, {AttributionOff, false, 0}} {
		buf.Reset()
		cfg := DefaultConfig()
		cfg.FlowAttribution = tt.mode
		in := newQdiscInput(cfg, input.Settings{Logger: log}, nil)
		called := false
		in.openXmit = func() (*qdisc.XmitCounter, error) {
			called = true
			return nil, errors.New("qdisc: eBPF flow attribution unavailable: no BTF")
		}
		err := in.startAttribution()
		if (err != nil) != tt.wantErr || in.xmit != nil || called == (tt.mode == AttributionOff) {
			t.Errorf("%s: err %v, counter %v, opened %v", tt.mode, err, in.xmit, called)
		}
		if n := strings.Count(buf.String(), "\n"); n != tt.lines || (n == 1 && !strings.Contains(buf.String(), "no BTF")) {
			t.Errorf("%s: log %q, want %d line(s)", tt.mode, buf.String(), tt.lines)
		}
	}
}

// publisher records events and ends the run after n publications.
type publisher struct {
	events []pipeline.Event
	n      int
	cancel context.CancelFunc
}

func (p *publisher) Publish(_ context.Context, evs ...pipeline.Event) error {
	p.events = append(p.events, pipeline.CloneEvents(evs)...)
	if p.n--; p.n == 0 {
		p.cancel()
	}
	return nil
}

func TestRunPublishesQdiscAndClassEvents(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t), nstest.New(t)
	nstest.VethPair(t, a, b, "vq1", 2, "10.81.0.1", "10.81.0.2")
	a.Run(t, "tc", "qdisc", "add", "dev", "vq1", "root", "handle", "5:", "mq")
	cfg := DefaultConfig()
	cfg.FlowAttribution = AttributionOff
	cfg.Period = config.Duration(time.Millisecond)
	in := newQdiscInput(cfg, input.Settings{}, qdisctest.Namespaces(t, a))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &publisher{n: 2, cancel: cancel}
	if err := in.Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Per period: the mq root, two children of the default kind, two mq
	// classes.
	child := qdisctest.DefaultQdisc(t)
	if len(p.events) != 10 {
		t.Fatalf("%d events, want 10 (5 per period)", len(p.events))
	}
	counts := map[string]int{}
	for _, ev := range p.events[5:] {
		scope, _ := ev.Fields.GetValue("fleutan.qdisc.scope")
		kind, _ := ev.Fields.GetValue("fleutan.qdisc.kind")
		q, hasQ := ev.Fields.GetValue("fleutan.qdisc.tx_queue")
		_, hasDelta := ev.Fields.GetValue("fleutan.qdisc.delta.bytes")
		counts[fmt.Sprintf("%v/%v/%v:%v/%v", scope, kind, hasQ, q, hasDelta)]++
		if ds, _ := ev.Fields.GetValue("event.dataset"); ds != Dataset || ev.Series == "" {
			t.Errorf("event %v: dataset %v series %q", ev.Fields, ds, ev.Series)
		}
	}
	want := map[string]int{
		"qdisc/mq/false:<nil>/true":       1,
		"qdisc/" + child + "/true:0/true": 1,
		"qdisc/" + child + "/true:1/true": 1,
		"class/mq/true:0/true":            1,
		"class/mq/true:1/true":            1,
	}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("second period events %v, want %v", counts, want)
	}
}

// TestSampleLeavesSnapshotInLatest: with the query API on
// (Settings.Latest) each collection's snapshot is stored there.
func TestSampleLeavesSnapshotInLatest(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t), nstest.New(t)
	nstest.VethPair(t, a, b, "vq2", 2, "10.82.0.1", "10.82.0.2")
	a.Run(t, "tc", "qdisc", "add", "dev", "vq2", "root", "handle", "6:", "mq")
	cfg := DefaultConfig()
	cfg.FlowAttribution = AttributionOff
	latest := input.NewLatest()
	in := newQdiscInput(cfg, input.Settings{Latest: latest}, qdisctest.Namespaces(t, a))
	defer in.close()
	for range 2 {
		if _, _, err := in.sample(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got, ok := latest.Get("qdisc")
	if !ok {
		t.Fatal("no qdisc collection in Latest")
	}
	snap, ok := got.Snapshot.(qdisc.Snapshot)
	// The mq root, its two children and its two classes.
	if !ok || !got.Time.Equal(snap.Time) || len(snap.Qdiscs) != 5 || snap.Qdiscs[0].Device.Name != "vq2" {
		t.Fatalf("latest %v %+v, want the 5 qdiscs and classes of vq2", got.Time, got.Snapshot)
	}
}
