// Command libuser prints one snapshot of each fleutanbeat collector: the
// flows, the cores and the qdiscs of the network namespace it runs in. It
// is a module of its own, so it can use only the library's public API.
//
// Output, one line each:
//
//	flow PROTO LOCAL REMOTE DIRECTION STATE pid PID NAME
//	cpu N cores
//	core CPU user_ticks U system_ticks S idle_ticks I
//	qdisc DEVICE KIND HANDLE root tx_queues N
//	SCOPE DEVICE KIND HANDLE parent PARENT tx_queue Q
//	SCOPE DEVICE KIND HANDLE parent PARENT
//
// where SCOPE is qdisc or class.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/fleutan/fleutanbeat/input/cpu"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/qdisc"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "libuser:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	if err := printFlows(ctx); err != nil {
		return err
	}
	if err := printCores(ctx); err != nil {
		return err
	}
	return printQdiscs(ctx)
}

func printFlows(ctx context.Context) error {
	c, err := flows.New(flows.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	snap, err := c.Collect(ctx)
	if err != nil {
		return err
	}
	for _, f := range snap.Flows {
		pid, name := 0, "-"
		if f.Process != nil {
			pid, name = f.Process.PID, f.Process.Name
		}
		fmt.Printf("flow %s %s %s %s %s pid %d %s\n", flows.TransportName(f.Protocol), f.Local, f.Remote,
			f.Direction, flows.StateName(f.State), pid, name)
	}
	return nil
}

func printCores(ctx context.Context) error {
	// Counting no process keeps this to /proc/stat: an empty list, not
	// nil, which is every process.
	c, err := cpu.New(cpu.Options{Method: cpu.MethodSampling})
	if err != nil {
		return err
	}
	defer c.Close()
	c.Track([]int{})
	snap, err := c.Collect(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("cpu %d cores\n", len(snap.Cores))
	for _, core := range snap.Cores {
		fmt.Printf("core %d user_ticks %d system_ticks %d idle_ticks %d\n", core.CPU, core.UserTicks, core.SystemTicks, core.IdleTicks)
	}
	return nil
}

func printQdiscs(ctx context.Context) error {
	c, err := qdisc.New(qdisc.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	snap, err := c.Collect(ctx)
	if err != nil {
		return err
	}
	for _, q := range snap.Qdiscs {
		line := fmt.Sprintf("%s %s %s %s", q.Scope, q.Device.Name, q.Kind, qdisc.FormatHandle(q.Handle))
		switch {
		case q.TxQueue >= 0:
			line += fmt.Sprintf(" parent %s tx_queue %d", qdisc.FormatHandle(q.Parent), q.TxQueue)
		case q.Scope == qdisc.ScopeQdisc && q.Root():
			line += fmt.Sprintf(" root tx_queues %d", q.Device.TxQueues)
		default:
			line += " parent " + qdisc.FormatHandle(q.Parent)
		}
		fmt.Println(line)
	}
	return nil
}
