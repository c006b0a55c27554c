package qdisc

import (
	"context"
	"fmt"
	"github.com/fleutan/fleutanbeat/input/qdisc/internal/qdisctest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

const (
	benchDevices = 16
	benchQueues  = 4
)

// benchTree makes benchDevices veths with benchQueues TX queues and an mq
// root each: 16 x (1 mq + 4 pfifo_fast) qdiscs and 16 x 4 mq classes.
func benchTree(b *testing.B) (*nstest.Netns, *nstest.Netns) {
	nstest.RequireRoot(b)
	a, peer := nstest.New(b), nstest.New(b)
	var batch strings.Builder
	for i := range benchDevices {
		fmt.Fprintf(&batch, "link add vb%d numtxqueues %d type veth peer name vb%dp netns %s\nlink set vb%d up\n", i, benchQueues, i, peer.Name, i)
	}
	runStdin(b, batch.String(), "ip", "-n", a.Name, "-batch", "-")
	batch.Reset()
	for i := range benchDevices {
		fmt.Fprintf(&batch, "qdisc add dev vb%d root handle 1: mq\n", i)
	}
	runStdin(b, batch.String(), "tc", "-n", a.Name, "-batch", "-")
	return a, peer
}

func runStdin(b *testing.B, stdin string, args ...string) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%v: %v\n%s", args, err, out)
	}
}

func selfCPU() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func childCPU(ps *os.ProcessState) time.Duration {
	return ps.UserTime() + ps.SystemTime()
}

// BenchmarkCollectVsTC compares one collection of 16 devices x 4 queues
// with what tc needs to show the same: tc -s qdisc show and tc -s class
// show of each device, both as one tc batch process and as separate runs.
func BenchmarkCollectVsTC(b *testing.B) {
	a, _ := benchTree(b)
	c := newTestCollector(b, Options{}, qdisctest.Namespaces(b, a))
	defer c.Close()
	ctx := context.Background()
	snap, err := c.Collect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if want := benchDevices * (1 + 2*benchQueues); len(snap.Qdiscs) != want {
		b.Fatalf("%d samples, want %d", len(snap.Qdiscs), want)
	}

	var tcBatch strings.Builder
	tcBatch.WriteString("qdisc show\n")
	for i := range benchDevices {
		fmt.Fprintf(&tcBatch, "class show dev vb%d\n", i)
	}
	tcOnce := func(batch bool) time.Duration {
		var total time.Duration
		run := func(stdin string, args ...string) {
			cmd := exec.Command("tc", append([]string{"-s", "-n", a.Name}, args...)...)
			cmd.Stdin = strings.NewReader(stdin)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("tc %v: %v\n%s", args, err, out)
			}
			total += childCPU(cmd.ProcessState)
		}
		if batch {
			run(tcBatch.String(), "-batch", "-")
			return total
		}
		run("", "qdisc", "show")
		for i := range benchDevices {
			run("", "class", "show", "dev", fmt.Sprintf("vb%d", i))
		}
		return total
	}

	// Fixed rounds per iteration, so that -benchtime 1x (make bench)
	// still averages: 60 collections span ten XPS refreshes.
	const rounds, collections = 30, 60
	var tcB, tcS, own time.Duration
	for b.Loop() {
		for range rounds {
			tcB += tcOnce(true)
			tcS += tcOnce(false)
		}
		// A collection is Collect and Diff, as the adapter does them.
		start := selfCPU()
		for range collections {
			cur, err := c.Collect(ctx)
			if err != nil {
				b.Fatal(err)
			}
			_ = Diff(snap, cur)
			snap = cur
		}
		own += selfCPU() - start
	}
	perOwn := float64(own.Nanoseconds()) / float64(collections*b.N)
	perBatch := float64(tcB.Nanoseconds()) / float64(rounds*b.N)
	perSep := float64(tcS.Nanoseconds()) / float64(rounds*b.N)
	b.ReportMetric(perOwn, "cpu-ns/collection")
	b.ReportMetric(perBatch, "tc-batch-cpu-ns")
	b.ReportMetric(perSep, "tc-17runs-cpu-ns")
	b.ReportMetric(perOwn/perBatch, "x-tc-batch")
	b.ReportMetric(perOwn/perSep, "x-tc-17runs")
}

// BenchmarkXmitAttributionOverhead sends the same UDP traffic through a
// veth with and without the eBPF program attached and reports the
// sender's extra CPU time per million packets (the program runs in the
// sender's context: veth transmits synchronously).
func BenchmarkXmitAttributionOverhead(b *testing.B) {
	for _, m := range []string{MethodTracepoint, MethodRawTracepoint} {
		b.Run(m, func(b *testing.B) { benchXmitOverhead(b, m) })
	}
}

func benchXmitOverhead(b *testing.B, attach string) {
	nstest.RequireRoot(b)
	a, peer := nstest.New(b), nstest.New(b)
	nstest.VethPair(b, a, peer, "vo0", 1, "10.82.0.1", "10.82.0.2")
	const packets = 200000
	send := func() time.Duration {
		cmd := a.Command("taskset", "-c", "0", os.Args[0], "-test.run=^$", "10.82.0.2:9", fmt.Sprint(packets), "64")
		cmd.Env = append(os.Environ(), qdisctest.Env+"=send", "GORACE=atexit_sleep_ms=0")
		cmd.Stdin = strings.NewReader("")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("sender: %v\n%s", err, out)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	const rounds = 2
	var off, on time.Duration
	b.ResetTimer()
	for range b.N {
		for range rounds {
			off += send()
			x, err := openXmitCounter("/sys/kernel/tracing", attach)
			if err != nil {
				b.Fatal(err)
			}
			on += send()
			var n uint64
			_ = x.Read(func(d *xmitDelta) { n += d.Packets })
			x.Close()
			if n < packets {
				b.Fatalf("counted %d packets, sent %d", n, packets)
			}
		}
	}
	b.StopTimer()
	total := float64(packets * rounds * b.N)
	b.ReportMetric(float64(off.Nanoseconds())/total*1e6/1e6, "off-cpu-ms/Mpkt")
	b.ReportMetric(float64(on.Nanoseconds())/total*1e6/1e6, "on-cpu-ms/Mpkt")
	b.ReportMetric(float64((on-off).Nanoseconds())/total*1e6/1e6, "ebpf-cpu-ms/Mpkt")
}
