package qdisc

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// xmitCounter owns the eBPF program counting transmitted bytes per
// (device, TX queue, flow) and reads its map as deltas.
type xmitCounter struct {
	method string
	prog   *ebpf.Program
	flows  *ebpf.Map
	lnk    link.Link
	prev   map[xmitFlowKey]xmitFlowVal
	cur    map[xmitFlowKey]xmitFlowVal
	// evicted, when set, counts entries the kernel evicted from the LRU
	// map between two Reads (input.qdisc.ebpf_evictions).
	evicted *atomic.Int64
}

// openXmitCounter loads and attaches the program: the tracepoint when
// tracefs is (or can be) mounted, else the raw tracepoint. methods
// restricts the choice (tests); empty means both. The error says why
// nothing worked.
func openXmitCounter(tracefs string, methods ...string) (*xmitCounter, error) {
	if len(methods) == 0 {
		methods = []string{MethodTracepoint, MethodRawTracepoint}
	}
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
	_ = rlimit.RemoveMemlock()
	spec, err := loadXmit()
	if err != nil {
		return nil, fmt.Errorf("qdisc: eBPF object: %w", err)
	}
	var errs []error
	for _, m := range methods {
		if m == MethodTracepoint {
			if err := ensureTracefs(tracefs); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", m, err))
				continue
			}
		}
		x, err := attachXmit(spec, m)
		if err == nil {
			return x, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m, err))
	}
	return nil, fmt.Errorf("qdisc: eBPF flow attribution unavailable: %w", errors.Join(errs...))
}

func attachXmit(spec *ebpf.CollectionSpec, method string) (*xmitCounter, error) {
	var objs struct {
		Tp    *ebpf.Program `ebpf:"tp_net_dev_start_xmit"`
		Flows *ebpf.Map     `ebpf:"xmit_flows"`
	}
	var rawObjs struct {
		Raw   *ebpf.Program `ebpf:"raw_net_dev_start_xmit"`
		Flows *ebpf.Map     `ebpf:"xmit_flows"`
	}
	x := &xmitCounter{method: method, prev: map[xmitFlowKey]xmitFlowVal{}, cur: map[xmitFlowKey]xmitFlowVal{}}
	var err error
	if method == MethodTracepoint {
		if err = spec.LoadAndAssign(&objs, nil); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		x.prog, x.flows = objs.Tp, objs.Flows
		x.lnk, err = link.Tracepoint("net", "net_dev_start_xmit", x.prog, nil)
	} else {
		if err = spec.LoadAndAssign(&rawObjs, nil); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		x.prog, x.flows = rawObjs.Raw, rawObjs.Flows
		x.lnk, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "net_dev_start_xmit", Program: x.prog})
	}
	if err != nil {
		x.Close()
		return nil, fmt.Errorf("attach: %w", err)
	}
	return x, nil
}

// ensureTracefs mounts tracefs at dir when no tracefs is reachable, as
// cilium/ebpf looks for tracepoint ids under /sys/kernel/tracing and
// /sys/kernel/debug/tracing.
func ensureTracefs(dir string) error {
	for _, d := range []string{dir, "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(d + "/events"); err == nil {
			return nil
		}
	}
	if err := unix.Mount("tracefs", dir, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount tracefs at %s: %w", dir, err)
	}
	return nil
}

// Method is the attach method in use.
func (x *xmitCounter) Method() string { return x.method }

// Close detaches the program and frees its map.
func (x *xmitCounter) Close() error {
	var errs []error
	if x.lnk != nil {
		errs = append(errs, x.lnk.Close())
		x.lnk = nil
	}
	if x.prog != nil {
		errs = append(errs, x.prog.Close())
		x.prog = nil
	}
	if x.flows != nil {
		errs = append(errs, x.flows.Close())
		x.flows = nil
	}
	return errors.Join(errs...)
}

// Read returns the traffic of each entry since the previous Read (since
// the attach, the first time). An entry whose counters went backwards was
// evicted and recreated: its delta is its new value.
func (x *xmitCounter) Read(fn func(*xmitDelta)) error {
	if x.flows == nil {
		return errors.New("qdisc: eBPF counter closed")
	}
	clear(x.cur)
	var k xmitFlowKey
	var v xmitFlowVal
	it := x.flows.Iterate()
	for it.Next(&k, &v) {
		x.cur[k] = v
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("qdisc: read eBPF map: %w", err)
	}
	// Nothing but the kernel's LRU removes entries: one that was read
	// before and is gone, or whose counters went back, was evicted, and
	// what it carried since the previous Read is lost.
	var evicted int64
	for k := range x.prev {
		if _, ok := x.cur[k]; !ok {
			evicted++
		}
	}
	var d xmitDelta
	for k, v := range x.cur {
		p := x.prev[k]
		b, n := v.Bytes-p.Bytes, v.Packets-p.Packets
		if v.Bytes < p.Bytes || v.Packets < p.Packets {
			b, n = v.Bytes, v.Packets
			evicted++
		}
		if b == 0 && n == 0 {
			continue
		}
		d = xmitDelta{
			DevNetns: uint64(k.DevNetns), Ifindex: int32(k.Ifindex), Queue: int(k.Queue),
			SockNetns: uint64(k.SkNetns), Inode: k.SockIno, Family: k.Family, Protocol: k.Protocol,
			Bytes: b, Packets: n,
		}
		switch k.Family {
		case unix.AF_INET:
			d.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(k.Saddr[:4])), k.Sport)
			d.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(k.Daddr[:4])), k.Dport)
		case unix.AF_INET6:
			d.Local = netip.AddrPortFrom(netip.AddrFrom16(k.Saddr), k.Sport)
			d.Remote = netip.AddrPortFrom(netip.AddrFrom16(k.Daddr), k.Dport)
		}
		fn(&d)
	}
	x.prev, x.cur = x.cur, x.prev
	if x.evicted != nil {
		x.evicted.Add(evicted)
	}
	return nil
}
