package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/rdma/rxetest"
)

// TestRDMAWithoutQueuePairs: on a kernel without RDMA netlink (the host
// CI's) `fleutan rdma` exits 1 with one line saying so; on one with RDMA
// but no queue pair of a process (the kernel matrix, between tests) it
// prints that there are none.
func TestRDMAWithoutQueuePairs(t *testing.T) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_RDMA)
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"rdma", "-i", "0.1"}, &stdout, &stderr, func(string) string { return "" })
	if err == nil {
		unix.Close(fd)
		if code != 0 || stdout.String() != "no RDMA queue pairs of a process\n" || stderr.Len() != 0 {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and no queue pairs", code, stdout.String(), stderr.String())
		}
		return
	}
	if code != 1 || stdout.Len() != 0 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), "no RDMA netlink") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and one line about RDMA netlink", code, stdout.String(), stderr.String())
	}
}

// TestLiveRDMAViewShowsRpingQueuePairs: with rping's server and client
// connected over soft-RoCE, `fleutan rdma` lists each process with its
// queue pair (RC, the CM endpoints, a send PSN that moved) and a core
// chart; --json carries both queue pairs and both processes' CPU usage.
func TestLiveRDMAViewShowsRpingQueuePairs(t *testing.T) {
	rxetest.New(t)
	srv := rxetest.StartRping(t, "-s", "-a", rxetest.AddrA, "-p", "7474", "-C", "100000000")
	time.Sleep(500 * time.Millisecond)
	cli := rxetest.StartRping(t, "-c", "-a", rxetest.AddrA, "-p", "7474", "-C", "100000000")
	cli.WaitLines(t, 3, time.Minute)
	cpid, spid := cli.Cmd.Process.Pid, srv.Cmd.Process.Pid

	tool := func(args ...string) string {
		c := exec.Command(os.Args[0], args...)
		c.Env = append(os.Environ(), roleEnv+"=fleutan", "COLUMNS=100")
		var stdout, stderr strings.Builder
		c.Stdout, c.Stderr = &stdout, &stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if err := waitBounded(c, toolLimit); err != nil {
			t.Fatalf("fleutan %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		t.Logf("$ fleutan %s\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
		return stdout.String()
	}
	out := tool("rdma", "-i", "1")
	for _, tc := range []struct {
		pid        int
		local, rem string
	}{{cpid, `10\.77\.0\.1#\d+ +10\.77\.0\.1#7474`, ""}, {spid, `10\.77\.0\.1#7474 +10\.77\.0\.1#\d+`, ""}} {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^~>rping\(%d\)\n\S+/1 +RC +\d+->\d+ +%s +sq \+(\d+) rq \+(\d+)\n___\n`, tc.pid, tc.local))
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("no queue pair of rping %d in\n%s", tc.pid, out)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n == 0 {
			t.Errorf("rping %d: send PSN did not move: %s", tc.pid, m[0])
		}
	}

	var iv interval
	if err := json.Unmarshal([]byte(tool("rdma", "-i", "1", "--json")), &iv); err != nil {
		t.Fatal(err)
	}
	if iv.RDMA == nil || iv.RDMADelta == nil || iv.CPU == nil {
		t.Fatalf("--json: %+v, want rdma, rdma_delta and cpu", iv)
	}
	seen := map[int]bool{}
	for _, q := range iv.RDMADelta.QPs {
		if q.QP.Type == "RC" && (q.QP.PID == cpid || q.QP.PID == spid) && q.SQPSN > 0 {
			seen[q.QP.PID] = true
		}
	}
	for _, p := range iv.CPU.Processes {
		if p.Process != nil && (p.Process.PID == cpid || p.Process.PID == spid) {
			seen[-p.Process.PID] = true
		}
	}
	for _, pid := range []int{cpid, spid} {
		if !seen[pid] || !seen[-pid] {
			t.Errorf("--json: rping %d: moving queue pair %v, cpu usage %v", pid, seen[pid], seen[-pid])
		}
	}
}
