package flowsinput

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// BenchmarkInputReportModes runs the whole input (collection, Diff,
// report choice, event building; a publisher that keeps nothing) over the
// flows benchmark's 36,000 established loopback sockets, with 1% of them
// replaced before each period, once with report: all and once with
// report: active. It reports each mode's CPU and events per period and
// the Go heap in use after the periods.
func BenchmarkInputReportModes(b *testing.B) {
	const holders, connsPer, churn, periods = 4, 4500, 45, 10
	ns := nstest.New(b)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	type holder struct {
		in  *os.File
		out *bufio.Reader
	}
	var hs []holder
	for i := range holders {
		cmd := ns.Command(exe)
		cmd.Env = append(os.Environ(), flowtest.Env+"=hold",
			"FLOWS_HOLD_CONNS="+strconv.Itoa(connsPer),
			fmt.Sprintf("FLOWS_HOLD_ADDR=127.0.0.%d:5000", i+1))
		pr, pw, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stdin = pr
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		pr.Close()
		b.Cleanup(func() { _ = pw.Close(); _ = cmd.Wait() })
		h := holder{in: pw, out: bufio.NewReader(out)}
		if line, _ := h.out.ReadString('\n'); !strings.HasPrefix(line, "ready") {
			b.Fatalf("holder %d: %q", i, line)
		}
		hs = append(hs, h)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for b.Loop() {
		for _, mode := range []string{ReportAll, ReportActive} {
			m := pipeline.NewMetrics()
			in := newTestInputMetrics(b, "period: 1h\nprotocols: [tcp]\nstates: [established]\nreport: "+mode+"\n", ns, slog.New(slog.DiscardHandler), m)
			in.method = MethodProcfs
			pub := &discardPublisher{}
			ctx := context.Background()
			if err := in.collect(ctx, pub); err != nil { // the cold collection
				b.Fatal(err)
			}
			if n := pub.events.Load(); n != holders*connsPer*2 {
				b.Fatalf("%s: first collection published %d events, want %d", mode, n, holders*connsPer*2)
			}
			pub.events.Store(0)
			var spent time.Duration
			for range periods {
				for _, h := range hs {
					fmt.Fprintf(h.in, "churn %d\n", churn)
					if line, _ := h.out.ReadString('\n'); strings.TrimSpace(line) != "ok" {
						b.Fatalf("churn: %q", line)
					}
				}
				c0 := cpu()
				if err := in.collect(ctx, pub); err != nil {
					b.Fatal(err)
				}
				spent += cpu() - c0
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(spent.Seconds()/periods, mode+"-cpu-s/period")
			b.ReportMetric(float64(pub.events.Load())/periods, mode+"-events/period")
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), mode+"-heap-MiB")
			b.Logf("report: %s: %.4f cpu-s and %.0f events per period (1%% of %d sockets new), heap in use %.1f MiB",
				mode, spent.Seconds()/periods, float64(pub.events.Load())/periods, holders*connsPer*2, float64(ms.HeapInuse)/(1<<20))
			if in.coll != nil {
				_ = in.coll.Close()
			}
		}
	}
}

// discardPublisher counts events and keeps nothing.
type discardPublisher struct{ events atomic.Int64 }

func (p *discardPublisher) Publish(_ context.Context, events ...pipeline.Event) error {
	p.events.Add(int64(len(events)))
	return nil
}
