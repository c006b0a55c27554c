package qdisc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

func findSample(samples []Sample, scope Scope, dev string, match func(*Sample) bool) *Sample {
	for i := range samples {
		s := &samples[i]
		if s.Scope == scope && s.Device.Name == dev && match(s) {
			return s
		}
	}
	return nil
}

func TestMQPerQueueDeltasAndFlowAttribution(t *testing.T) {
	for _, method := range []string{MethodTracepoint, MethodRawTracepoint} {
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
	in := newQdiscInput(cfg, input.Settings{}, testNamespaces(t, a, b))
	in.openXmit = func() (*xmitCounter, error) { return openXmitCounter("/sys/kernel/tracing", method) }
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
	specs := make([]sendSpec, len(sends))
	for i, s := range sends {
		specs[i] = sendSpec{s.cpu, fmt.Sprintf("10.77.0.2:%d", s.port), s.count, s.size}
	}
	senders := startSenders(t, a, specs...)
	samples, fs, err := in.sample(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var total uint64
	child := defaultQdisc(t)
	for q := range 4 {
		s := findSample(samples, ScopeQdisc, "vq0", func(s *Sample) bool { return s.TxQueue == q })
		if s == nil {
			t.Fatalf("no qdisc for tx queue %d", q)
		}
		var want Counters
		if q < len(sends) {
			want = Counters{Bytes: uint64(sends[q].count) * udpFrame(sends[q].size), Packets: uint64(sends[q].count)}
		}
		if s.Kind != child || s.Parent != 1<<16|uint32(q+1) || !s.HasDelta || s.Delta != want {
			t.Errorf("queue %d: kind %s parent %s delta %+v (has %v), want %s 1:%d %+v", q, s.Kind, FormatHandle(s.Parent), s.Delta, s.HasDelta, child, q+1, want)
		}
		total += want.Bytes
	}
	root := findSample(samples, ScopeQdisc, "vq0", func(s *Sample) bool { return s.Root() })
	if root != nil && !reflect.DeepEqual(root.Device.XPS, []string{"1", "2", "0", "0"}) {
		t.Errorf("XPS masks %q, want [1 2 0 0]", root.Device.XPS)
	}
	if root == nil || root.Kind != "mq" || root.TxQueue != -1 || root.Delta.Bytes != total || root.Device.TxQueues != 4 {
		t.Errorf("mq root: %+v, want delta bytes %d", root, total)
	}

	for i, s := range sends {
		var got []FlowSample
		for _, f := range fs {
			if f.Device.Name == "vq0" && !f.Other && f.Remote.Port() == uint16(s.port) {
				got = append(got, f)
			}
		}
		if len(got) != 1 {
			t.Fatalf("flow to port %d: %d flow samples, want 1: %+v", s.port, len(got), fs)
		}
		f := got[0]
		wantBytes := uint64(s.count) * udpFrame(s.size)
		if f.TxQueue != s.cpu || f.Bytes != wantBytes || f.Packets != uint64(s.count) || f.Local.String() != senders[i].local {
			t.Errorf("flow to port %d: queue %d bytes %d packets %d local %s, want queue %d bytes %d packets %d local %s",
				s.port, f.TxQueue, f.Bytes, f.Packets, f.Local, s.cpu, wantBytes, s.count, senders[i].local)
		}
		if f.Flow == nil || f.Flow.Process == nil || f.Flow.Process.PID != senders[i].cmd.Process.Pid {
			t.Errorf("flow to port %d: process %+v, want pid %d (sample %+v)", s.port, f.Flow, senders[i].cmd.Process.Pid, f)
			snap, err := in.flows.Collect(ctx)
			t.Logf("flows now: %d %v", len(snap.Flows), err)
			for _, x := range snap.Flows {
				t.Logf("  %d %d %s %s ino %d proc %v", x.Netns, x.Protocol, x.Local, x.Remote, x.Inode, x.Process)
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
		in.openXmit = func() (*xmitCounter, error) {
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
	in := newQdiscInput(cfg, input.Settings{}, testNamespaces(t, a))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &publisher{n: 2, cancel: cancel}
	if err := in.Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Per period: the mq root, two children of the default kind, two mq
	// classes.
	child := defaultQdisc(t)
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
