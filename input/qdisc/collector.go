package qdisc

import (
	"log/slog"
	"time"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
)

// CollectorOptions configures a Collector.
type CollectorOptions struct {
	// ProcRoot is the /proc mount ("/proc" when empty), SysRoot the /sys
	// mount ("/sys"); RunDir holds named namespaces ("/run/netns").
	ProcRoot, SysRoot, RunDir string
	// AllNamespaces reads every network namespace netns.List finds.
	AllNamespaces bool
	// Namespaces, when set, replaces the discovery above.
	Namespaces func() ([]netns.Namespace, error)
	// Match selects devices; nil selects every device but loopbacks.
	Match  func(name string, loopback bool) bool
	Logger *slog.Logger
	// Now is the clock for deltas (time.Now when nil).
	Now func() time.Time
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
