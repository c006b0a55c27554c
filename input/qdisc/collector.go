package qdisc

import (
	"fmt"
	"log/slog"
	"path"
	"time"

	"github.com/fleutan/fleutanbeat/input/flows"
)

// Options configures a Collector. The zero Options collects every device
// but loopbacks of the caller's own network namespace, without flow
// attribution.
type Options struct {
	// ProcRoot is the /proc mount ("/proc" when empty), SysRoot the /sys
	// mount ("/sys"); RunDir holds named namespaces ("/run/netns").
	ProcRoot, SysRoot, RunDir string
	// AllNamespaces reads every network namespace that a process or
	// RunDir holds instead of the collector's own.
	AllNamespaces bool
	// Namespaces, when set, replaces the discovery above: it is called at
	// each collection and names the namespaces to read (Inode, Name and
	// Path are used).
	Namespaces func() ([]flows.Namespace, error)
	// Devices are shell patterns (path.Match) of device names; empty
	// means every device except loopbacks. A loopback is kept when a
	// pattern names it.
	Devices []string
	// Xmit, when set, is the eBPF transmit counter (OpenXmitCounter):
	// each Snapshot then has the flows behind each TX queue over the
	// period (QueueFlows), joined with a flows collector's sockets and
	// processes. The caller closes it after the Collector.
	Xmit *XmitCounter
	// TopFlowsPerQueue bounds the QueueFlows of one TX queue (20 when 0);
	// the rest are summed into one Other flow.
	TopFlowsPerQueue int
	Logger           *slog.Logger
	// Now is the clock of Snapshot.Time (time.Now when nil).
	Now func() time.Time
}

func (o *Options) validate() error {
	for i, d := range o.Devices {
		if _, err := path.Match(d, ""); err != nil || d == "" {
			return fmt.Errorf("qdisc: device pattern %d, %q, is not a device name or shell pattern", i, d)
		}
	}
	if o.Xmit != nil && o.Xmit.x == nil {
		return fmt.Errorf("qdisc: Options.Xmit is not attached (use OpenXmitCounter)")
	}
	if o.TopFlowsPerQueue < 0 {
		return fmt.Errorf("qdisc: TopFlowsPerQueue %d is negative", o.TopFlowsPerQueue)
	}
	return nil
}

// MatchDevice reports whether devices (Options.Devices) select the device
// name: any pattern matches it, or, without patterns, it is not a
// loopback.
func MatchDevice(devices []string, name string, loopback bool) bool {
	if len(devices) == 0 {
		return !loopback
	}
	for _, p := range devices {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// classless kinds have no classes worth a class dump. Multiqueue and
// classful kinds (mq, mqprio, htb, tbf, prio, ...) are dumped. The
// per-flow queues that fq_codel, sfq and cake list as classes are
// hash buckets, not classes an operator configures, and are skipped.
var classless = map[string]bool{
	"noqueue": true, "pfifo_fast": true, "pfifo": true, "bfifo": true,
	"pfifo_head_drop": true, "ingress": true, "clsact": true,
	"fq_codel": true, "fq": true, "sfq": true, "cake": true, "codel": true,
	"pie": true, "fq_pie": true, "choke": true, "hhf": true, "plug": true,
}

// multiqueue kinds give each TX queue a class (minor = queue + 1) whose
// child qdisc feeds that queue (net/sched/sch_mq.c, sch_mqprio.c).
func multiqueue(kind string) bool { return kind == "mq" || kind == "mqprio" }
