package flowsinput

import (
	"runtime"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/process"
)

// BenchmarkReporter is what report: active adds to a collection of the
// flows benchmark's size (36,000 established flows): each period 1% of the
// flows are new (and as many ended, with their final events) and 5% carry
// traffic. It reports the CPU of one period's decisions (ns/op is one
// period), the heap the marks hold at steady state, per flow, and the
// share of flows that get an event. Compare ns/op with the cpu-s/ss-tinp
// of BenchmarkFlowsVsSS in the same run.
func BenchmarkReporter(b *testing.B) {
	const n, churn, busy = 36000, 360, 1800
	proc := &process.Process{PID: 4242, Name: "holder"}
	fl := make([]flows.Flow, n, n+churn)
	for i := range fl {
		fl[i] = flows.Flow{Cookie: uint64(i + 1), State: 1, Process: proc, HasTCP: true}
	}
	deltas := make([]flows.FlowDelta, n+churn)
	next := uint64(n + 1)
	ts := time.Unix(1_700_000_000, 0)
	r := newReporter(30)
	period := func(p int) (reported int) {
		r.begin()
		for i := range fl {
			deltas[i] = flows.FlowDelta{}
			if (i+p*busy)%(n/busy) == 0 {
				deltas[i] = flows.FlowDelta{OK: true, Delta: flows.Delta{BytesOut: 100, SegsOut: 1}}
			}
			if due, _ := r.decide(&fl[i], deltas[i], ts, 10*time.Second); due {
				reported++
			}
		}
		r.end()
		// 1% of the flows end (their final events come next period) and
		// as many new ones take their place.
		fl = fl[:n]
		for j := range churn {
			i := (p*churn + j*97) % n
			fl = append(fl, fl[i])
			fl[len(fl)-1].Final = true
			fl[i] = flows.Flow{Cookie: next, State: 1, Process: proc, HasTCP: true}
			next++
		}
		ts = ts.Add(10 * time.Second)
		return reported
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for p := range 60 { // to steady state: two heartbeats
		period(p)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	reported, periods := 0, 0
	b.ResetTimer()
	for b.Loop() {
		reported += period(60 + periods)
		periods++
	}
	b.StopTimer()
	b.ReportMetric(heap/float64(len(r.index)), "heap-B/flow")
	b.ReportMetric(float64(reported)/float64(periods*len(fl)), "reported-fraction")
}
