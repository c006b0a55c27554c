package qdisc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/nstest"
	"github.com/fleutan/fleutanbeat/input/qdisc/internal/qdisctest"
)

// TestKprobeAddsNothingOverTracepoint is the evidence behind having no
// kprobe path: the tool this input replaces counted transmissions with a
// kprobe on dev_hard_start_xmit, we use the net_dev_start_xmit tracepoint
// that fires inside it (xmit_one, once per skb handed to the driver). Both
// run side by side here on XPS-steered traffic over an mq veth, and their
// per-queue bytes and transmissions must be equal to each other and to
// what was sent. A kprobe sees only the first skb of the list it is
// given; on this path each call carries one skb, so any difference would
// be a transmission one of the two misses. Debian's kernels have kprobes
// (the kernel matrix runs this); a kernel without them skips.
func TestKprobeAddsNothingOverTracepoint(t *testing.T) {
	nstest.RequireRoot(t)
	_ = rlimit.RemoveMemlock()
	a, b := nstest.New(t), nstest.New(t)
	const dev = "vkp0"
	nstest.VethPair(t, a, b, dev, 4, "10.78.0.1", "10.78.0.2")
	a.Run(t, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "mq")
	a.Run(t, "sh", "-c", "echo 1 > /sys/class/net/"+dev+"/queues/tx-0/xps_cpus && echo 2 > /sys/class/net/"+dev+"/queues/tx-1/xps_cpus && echo 0 > /sys/class/net/"+dev+"/queues/tx-2/xps_cpus && echo 0 > /sys/class/net/"+dev+"/queues/tx-3/xps_cpus")
	ifindex, netns := devIdentity(t, a, dev)

	kp := newKprobeCounter(t, ifindex, netns)
	defer kp.close()
	tp, err := openXmitCounter("/sys/kernel/tracing", MethodTracepoint)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()

	sends := []qdisctest.SendSpec{
		{CPU: 0, Dst: "10.78.0.2:5000", Count: 40, Size: 1200},
		{CPU: 1, Dst: "10.78.0.2:5001", Count: 25, Size: 100},
	}
	qdisctest.StartSenders(t, a, sends...)

	type counts struct{ bytes, xmits uint64 }
	fromTP := map[int]counts{}
	if err := tp.Read(func(d *xmitDelta) {
		if d.Ifindex == int32(ifindex) && d.DevNetns == netns {
			c := fromTP[d.Queue]
			c.bytes += d.Bytes
			c.xmits += d.Packets // UDP without GSO: one packet per skb
			fromTP[d.Queue] = c
		}
	}); err != nil {
		t.Fatal(err)
	}
	fromKP := kp.read(t)
	for q := range 4 {
		var want counts
		if q < len(sends) {
			want = counts{uint64(sends[q].Count) * qdisctest.UDPFrame(sends[q].Size), uint64(sends[q].Count)}
		}
		k, p := fromKP[q], fromTP[q]
		t.Logf("queue %d: kprobe %d bytes %d skbs, tracepoint %d bytes %d packets, sent %d bytes %d packets", q, k.bytes, k.xmits, p.bytes, p.xmits, want.bytes, want.xmits)
		if k != want || p != want {
			t.Errorf("queue %d: kprobe %+v, tracepoint %+v, want both %+v", q, k, p, want)
		}
	}
}

// devIdentity is dev's ifindex in ns and the inode of ns, as the
// tracepoint program keys them.
func devIdentity(t *testing.T, ns *nstest.Netns, dev string) (int, uint64) {
	t.Helper()
	out := ns.Run(t, "cat", "/sys/class/net/"+dev+"/ifindex")
	idx, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("ifindex of %s: %q", dev, out)
	}
	var st unix.Stat_t
	if err := unix.Stat(ns.Path(), &st); err != nil {
		t.Fatal(err)
	}
	return idx, st.Ino
}

// kprobeCounter is a kprobe on dev_hard_start_xmit(first, dev, txq, ret)
// counting, for one device, the bytes (skb->len) and calls per TX queue
// (skb->queue_mapping) of the first skb it is handed. Written with the asm
// package from offsets of the running kernel's BTF: a test needs no second
// C object.
type kprobeCounter struct {
	m    *ebpf.Map
	prog *ebpf.Program
	lnk  link.Link
}

const kprobeQueues = 16

func newKprobeCounter(t *testing.T, ifindex int, netns uint64) *kprobeCounter {
	t.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		nstest.RequireKernel(t, "BTF ("+err.Error()+")")
	}
	off := func(typ string, path ...string) int16 {
		t.Helper()
		var s *btf.Struct
		if err := spec.TypeByName(typ, &s); err != nil {
			t.Fatalf("BTF: struct %s: %v", typ, err)
		}
		o, err := memberOffset(s, path...)
		if err != nil {
			t.Fatalf("BTF: %s.%s: %v", typ, strings.Join(path, "."), err)
		}
		return int16(o)
	}
	offDI, offSI := off("pt_regs", "di"), off("pt_regs", "si")
	offLen, offQueue := off("sk_buff", "len"), off("sk_buff", "queue_mapping")
	offIfindex, offNet := off("net_device", "ifindex"), off("net_device", "nd_net", "net")
	offInum := off("net", "ns", "inum")

	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: kprobeQueues})
	if err != nil {
		t.Fatal(err)
	}
	// Stack: fp-8 len (u32), fp-16 queue (u16), fp-24 ifindex (u32),
	// fp-32 struct net *, fp-40 inum (u32), fp-48 map key.
	read := func(dst int16, size int32, base asm.Register, offset int16) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Imm(asm.R1, 0),
			asm.StoreMem(asm.RFP, dst, asm.R1, asm.DWord),
			asm.Mov.Reg(asm.R1, asm.RFP),
			asm.Add.Imm(asm.R1, int32(dst)),
			asm.Mov.Imm(asm.R2, size),
			asm.Mov.Reg(asm.R3, base),
			asm.Add.Imm(asm.R3, int32(offset)),
			asm.FnProbeReadKernel.Call(),
		}
	}
	insns := asm.Instructions{
		asm.LoadMem(asm.R6, asm.R1, offDI, asm.DWord), // skb
		asm.LoadMem(asm.R7, asm.R1, offSI, asm.DWord), // dev
	}
	insns = append(insns, read(-24, 4, asm.R7, offIfindex)...)
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.RFP, -24, asm.Word),
		asm.JNE.Imm32(asm.R1, int32(ifindex), "out"),
	)
	insns = append(insns, read(-32, 8, asm.R7, offNet)...)
	insns = append(insns, asm.LoadMem(asm.R8, asm.RFP, -32, asm.DWord))
	insns = append(insns, read(-40, 4, asm.R8, offInum)...)
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.RFP, -40, asm.Word),
		asm.JNE.Imm32(asm.R1, int32(uint32(netns)), "out"),
	)
	insns = append(insns, read(-8, 4, asm.R6, offLen)...)
	insns = append(insns, read(-16, 2, asm.R6, offQueue)...)
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.RFP, -16, asm.Half),
		asm.JGE.Imm(asm.R1, kprobeQueues, "out"),
		asm.StoreMem(asm.RFP, -48, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -48),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.RFP, -8, asm.Word),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R1, 1),
		asm.Add.Imm(asm.R0, 8),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Kprobe, Instructions: insns, License: "GPL"})
	if err != nil {
		m.Close()
		t.Fatalf("load the kprobe program: %v", err)
	}
	lnk, err := link.Kprobe("dev_hard_start_xmit", prog, nil)
	if err != nil {
		prog.Close()
		m.Close()
		nstest.RequireKernel(t, "a kprobe on dev_hard_start_xmit ("+err.Error()+")")
	}
	return &kprobeCounter{m: m, prog: prog, lnk: lnk}
}

func (k *kprobeCounter) read(t *testing.T) map[int]struct{ bytes, xmits uint64 } {
	t.Helper()
	out := map[int]struct{ bytes, xmits uint64 }{}
	for q := uint32(0); q < kprobeQueues; q++ {
		var v [2]uint64
		if err := k.m.Lookup(q, &v); err != nil {
			t.Fatal(err)
		}
		if v != [2]uint64{} {
			out[int(q)] = struct{ bytes, xmits uint64 }{v[0], v[1]}
		}
	}
	return out
}

func (k *kprobeCounter) close() {
	_ = k.lnk.Close()
	_ = k.prog.Close()
	_ = k.m.Close()
}

// memberOffset is the byte offset of a member path in s, looking through
// anonymous structs and unions (sk_buff keeps most fields in them).
func memberOffset(s *btf.Struct, path ...string) (uint32, error) {
	var total uint32
	typ := btf.Type(s)
	for _, name := range path {
		o, mt, err := findMember(typ, name)
		if err != nil {
			return 0, err
		}
		total += o
		typ = mt
	}
	return total, nil
}

// members are the members of a struct or union, nil for other types.
func members(typ btf.Type) []btf.Member {
	switch c := btf.UnderlyingType(typ).(type) {
	case *btf.Struct:
		return c.Members
	case *btf.Union:
		return c.Members
	}
	return nil
}

func findMember(typ btf.Type, name string) (uint32, btf.Type, error) {
	ms := members(typ)
	if ms == nil {
		return 0, nil, fmt.Errorf("%s: %s is not a struct or union", name, typ)
	}
	for _, m := range ms {
		if m.Name == name {
			if m.BitfieldSize != 0 || m.Offset%8 != 0 {
				return 0, nil, fmt.Errorf("%s is a bitfield", name)
			}
			return m.Offset.Bytes(), m.Type, nil
		}
		if m.Name == "" {
			if o, t, err := findMember(m.Type, name); err == nil {
				return m.Offset.Bytes() + o, t, nil
			}
		}
	}
	return 0, nil, errors.New("no member " + name)
}
