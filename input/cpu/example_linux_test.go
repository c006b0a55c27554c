package cpu_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/fleutan/fleutanbeat/input/cpu"
)

// A collector measures the processes it tracks; two collections and Diff
// give their usage. This example measures itself while it burns CPU.
func Example() {
	c, err := cpu.New(cpu.Options{}) // eBPF when allowed, else sampling
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.Track([]int{os.Getpid()})
	// eBPF counts a thread from its first switch after the program was
	// attached: sleep, so that this one is switched out and in again.
	time.Sleep(10 * time.Millisecond)
	ctx := context.Background()
	prev, err := c.Collect(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	burn(200 * time.Millisecond)
	cur, err := c.Collect(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	u := cpu.Diff(prev, cur)
	for _, p := range u.Processes {
		if p.Process.PID == os.Getpid() {
			fmt.Println("measured itself:", p.TotalNs >= uint64(100*time.Millisecond))
		}
	}
	// Output: measured itself: true
}

// Collect reads every online core from /proc/stat; its snapshot is
// cumulative, so one alone gives counters, not rates.
func ExampleCollector_Collect() {
	c, err := cpu.New(cpu.Options{Method: cpu.MethodSampling})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	snap, err := c.Collect(context.Background())
	fmt.Println(err == nil, len(snap.Cores) > 0, snap.Method)
	// Output: true true sampling
}

// burn spins until this process used d of CPU time (on a loaded machine
// that takes longer than d).
func burn(d time.Duration) {
	used := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	x, start := uint64(1), used()
	for i := 0; ; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		if i%(1<<16) == 0 && used()-start >= d {
			break
		}
	}
	_ = x
}
