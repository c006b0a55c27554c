package flowsinput

import (
	"context"
	"fmt"
	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// countingPublisher counts the final outbound flows of one process and
// keeps nothing, so the agent's CPU is what the input costs.
type countingPublisher struct {
	pid   string
	final atomic.Int64
}

func (p *countingPublisher) Publish(_ context.Context, events ...pipeline.Event) error {
	for _, e := range events {
		final, _ := e.Fields.GetValue("fleutan.flow.final")
		dir, _ := e.Fields.GetString("fleutan.flow.direction")
		pid, _ := e.Fields.GetValue("process.pid")
		if final == true && dir == "outbound" && fmt.Sprint(pid) == p.pid {
			p.final.Add(1)
		}
	}
	return nil
}

// procCPU is a process's user+system time from /proc/PID/stat.
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)            // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64)            // field 15
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

type shortRun struct {
	conns, failed, reported int64
	took                    time.Duration
	agent, peers            time.Duration // CPU
	drops                   int64
}

// agentPer1k is the agent's CPU time per 1,000 connections, which is its
// share of one core at 1,000 connections a second.
func (r shortRun) agentPer1k() float64 {
	return r.agent.Seconds() * 1000 / float64(r.conns)
}

func (r shortRun) peersPer1k() float64 {
	return r.peers.Seconds() * 1000 / float64(r.conns)
}

// runShort runs the flows input with method while a client in ns makes
// rate short connections a second for secs seconds.
func runShort(b *testing.B, ns *nstest.Netns, method string, rate, secs int) shortRun {
	server, client := flowtest.Start(b, ns), flowtest.Start(b, ns)
	addr := server.Do(b, "listen tcp 127.0.0.1:0")
	server.Do(b, "serve")
	m := pipeline.NewMetrics()
	in := newTestInputBench(b, fmt.Sprintf("period: 1s\nprotocols: [tcp]\nmethod: %s\nmax_flows: 1000000\n", method), ns, m)
	pub := &countingPublisher{pid: strconv.Itoa(client.PID())}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	waitCollections := func(n int64) {
		for m.Counter("input.flows.collections").Load() < n {
			time.Sleep(time.Millisecond)
		}
	}
	cpu0, peers0 := selfCPU(), procCPU(b, client.PID())+procCPU(b, server.PID())
	go func() { done <- in.Run(ctx, pub) }()
	waitCollections(1)
	reply := client.Do(b, "blast %s %d %d", addr, rate, secs)
	// Two more collections: the last connections are reported.
	waitCollections(m.Counter("input.flows.collections").Load() + 2)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	var r shortRun
	r.agent = time.Duration((selfCPU() - cpu0) * float64(time.Second))
	r.peers = procCPU(b, client.PID()) + procCPU(b, server.PID()) - peers0
	var us int64
	if _, err := fmt.Sscan(reply, &r.conns, &r.failed, &us); err != nil {
		b.Fatalf("blast: %q: %v", reply, err)
	}
	r.took = time.Duration(us) * time.Microsecond
	r.reported = pub.final.Load()
	for _, k := range []string{"dropped_ring_full", "dropped_map_full", "dropped_pending_full"} {
		r.drops += m.Counter("input.flows.ebpf." + k).Load()
	}
	return r
}

func newTestInputBench(b *testing.B, src string, ns *nstest.Netns, m *pipeline.Metrics) *flowsInput {
	return newTestInputMetrics(b, src, ns, slog.New(slog.DiscardHandler), m)
}

// BenchmarkShortConnections: the agent's CPU per 1,000 short loopback
// connections (= its share of a core at 1,000 connections a second) with
// method ebpf and with method procfs in the same run, their ratio, what
// each reports, and whether ebpf keeps up with 10,000 connections a
// second. The log lines add the client's and server's CPU per 1,000
// connections (ticks of 10 ms: the tracepoint's share of it is below
// that resolution). Run with -benchtime 1x.
func BenchmarkShortConnections(b *testing.B) {
	nstest.RequireRoot(b)
	ns := nstest.New(b)
	for range b.N {
		ebpf := runShort(b, ns, MethodEBPF, 1000, 10)
		procfs := runShort(b, ns, MethodProcfs, 1000, 10)
		fast := runShort(b, ns, MethodEBPF, 10000, 5)
		for _, r := range []struct {
			name string
			r    shortRun
		}{{"ebpf@1k/s", ebpf}, {"procfs@1k/s", procfs}, {"ebpf@10k/s", fast}} {
			b.Logf("%-12s %6d connections (%d failed) in %s, %6d reported final with their pid, %d dropped; agent %.1f ms CPU per 1,000 connections, peers %.1f ms",
				r.name, r.r.conns, r.r.failed, r.r.took.Round(time.Millisecond), r.r.reported, r.r.drops, r.r.agentPer1k()*1000, r.r.peersPer1k()*1000)
		}
		b.ReportMetric(ebpf.agentPer1k()*1000, "ebpf_agent_cpu_ms/1k_conns")
		b.ReportMetric(procfs.agentPer1k()*1000, "procfs_agent_cpu_ms/1k_conns")
		b.ReportMetric(ebpf.agentPer1k()/procfs.agentPer1k(), "ratio_ebpf_vs_procfs")
		b.ReportMetric(float64(ebpf.reported)/float64(ebpf.conns), "ebpf_reported_fraction")
		b.ReportMetric(float64(procfs.reported)/float64(procfs.conns), "procfs_reported_fraction")
		b.ReportMetric(float64(fast.conns)/fast.took.Seconds(), "conns/s@10k")
		b.ReportMetric(float64(fast.reported)/float64(fast.conns), "ebpf_reported_fraction@10k")
		b.ReportMetric(fast.agentPer1k()*1000, "ebpf_agent_cpu_ms/1k_conns@10k")
	}
}

// selfCPU is the CPU time this process used so far, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
