package cpu_test

import (
	"fmt"
	"time"

	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/process"
)

// Diff turns two cumulative snapshots into usage over the time between
// them: per core the fractions of its ticks, per process its share of one
// core and how it spread over the cores.
func ExampleDiff() {
	srv := &process.Process{PID: 42, Name: "srv", StartTime: 777}
	prev := cpu.Snapshot{
		Time: time.Unix(100, 0), MonotonicNs: 100e9, Method: cpu.MethodEBPF,
		Cores: []cpu.CoreTimes{{CPU: 0, UserTicks: 1000, IdleTicks: 1000}, {CPU: 1, UserTicks: 500, IdleTicks: 1500}},
		Processes: []cpu.ProcessTimes{
			{Process: srv, Series: 1, CoreNs: []uint64{4e9, 1e9}, Migrations: 10},
		},
	}
	cur := cpu.Snapshot{
		// Two seconds later: 200 ticks per core.
		Time: time.Unix(102, 0), MonotonicNs: 102e9, Method: cpu.MethodEBPF,
		Cores: []cpu.CoreTimes{{CPU: 0, UserTicks: 1150, IdleTicks: 1050}, {CPU: 1, UserTicks: 550, IdleTicks: 1650}},
		Processes: []cpu.ProcessTimes{
			{Process: srv, Series: 1, CoreNs: []uint64{5.5e9, 1.5e9}, Migrations: 13},
		},
	}
	u := cpu.Diff(prev, cur)
	fmt.Println("period", u.Period)
	for _, c := range u.Cores {
		fmt.Printf("core %d: user %.2f idle %.2f\n", c.CPU, c.User, c.Idle)
	}
	for _, p := range u.Processes {
		fmt.Printf("%s: %.2f of a core, spread %.4f over %d cores, mostly on core %d, %d migrations\n",
			p.Process.Name, p.Pct, p.Spread, p.CoresUsed, p.DominantCore, p.Migrations)
		for _, c := range p.Cores {
			fmt.Printf("  core %d: %.2f of the core, share %.2f\n", c.CPU, c.Pct, c.Share)
		}
	}
	// Output:
	// period 2s
	// core 0: user 0.75 idle 0.25
	// core 1: user 0.25 idle 0.75
	// srv: 1.00 of a core, spread 1.7548 over 2 cores, mostly on core 0, 3 migrations
	//   core 0: 0.75 of the core, share 0.75
	//   core 1: 0.25 of the core, share 0.25
}
