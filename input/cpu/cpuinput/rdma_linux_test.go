package cpuinput

import (
	"log/slog"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/internal/procindex"
	"github.com/fleutan/fleutanbeat/input/rdma/rxetest"
)

// TestRDMAQueuePairOwnersAreNetworkActive: rping's server and client,
// connected over soft-RoCE, hold no TCP or UDP socket, yet their queue
// pairs make them network-active: both are selected, with no flows and
// one queue pair each.
func TestRDMAQueuePairOwnersAreNetworkActive(t *testing.T) {
	rxetest.New(t)
	srv := rxetest.StartRping(t, "-s", "-a", rxetest.AddrA, "-p", "7473", "-C", "100000000")
	time.Sleep(500 * time.Millisecond)
	cli := rxetest.StartRping(t, "-c", "-a", rxetest.AddrA, "-p", "7473", "-C", "100000000")
	cli.WaitLines(t, 3, time.Minute)

	log := slog.New(slog.DiscardHandler)
	in := &cpuInput{cfg: DefaultConfig(), s: input.Settings{Logger: log, ProcRoot: "/proc"}, log: log}
	in.procs = procindex.New(procindex.Options{ProcRoot: "/proc"})
	defer func() {
		if in.rdma != nil {
			in.rdma.Close()
		}
	}()
	sel, err := in.selectProcesses()
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{cli.Cmd.Process.Pid, srv.Cmd.Process.Pid} {
		if n, ok := sel.flows(pid); !ok || n != 0 {
			t.Errorf("rping %d: selected %v with %d flows, want selected with 0", pid, ok, n)
		}
		// One RC queue pair each: what fleutan.cpu.rdma_qps reports.
		if n := in.qps[pid]; n != 1 {
			t.Errorf("rping %d: %d queue pairs, want 1", pid, n)
		}
	}
}
