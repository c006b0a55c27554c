package rdma

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	vnl "github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netlink"
	"github.com/fleutan/fleutanbeat/input/internal/procindex"
)

// Collector reads RDMA state from the kernel. It is not safe for
// concurrent use.
type Collector struct {
	o     Options
	conn  *netlink.Conn
	lib   *vnl.Handle
	procs *procindex.Index
	req   []byte
}

// New opens the RDMA netlink socket. It returns an error wrapping
// ErrNotSupported when the kernel has no RDMA netlink.
func New(o Options) (*Collector, error) {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	conn, err := netlink.Open(unix.NETLINK_RDMA, netlink.Options{Netns: o.Netns, Timeout: o.Timeout})
	if err != nil {
		if errors.Is(err, unix.EPROTONOSUPPORT) {
			return nil, fmt.Errorf("%w: %w", ErrNotSupported, err)
		}
		return nil, fmt.Errorf("rdma: %w", err)
	}
	c := &Collector{o: o, conn: conn, procs: procindex.New(procindex.Options{ProcRoot: o.ProcRoot, Logger: o.Logger})}
	if !o.NoCounters {
		if c.lib, err = libHandle(o.Netns); err != nil {
			conn.Close()
			return nil, fmt.Errorf("rdma: counters socket: %w", err)
		}
		c.lib.SetSocketTimeout(o.Timeout)
	}
	return c, nil
}

func libHandle(ns string) (*vnl.Handle, error) {
	if ns == "" {
		return vnl.NewHandle(unix.NETLINK_RDMA)
	}
	h, err := vnetns.GetFromPath(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return vnl.NewHandleAt(h, unix.NETLINK_RDMA)
}

// Close releases the sockets. It is safe to call more than once.
func (c *Collector) Close() error {
	if c.lib != nil {
		c.lib.Close()
		c.lib = nil
	}
	return c.conn.Close()
}

// dump runs one NLDEV dump request with the given attributes.
func (c *Collector) dump(cmd int, attrs []byte, fn func(b []byte) error) error {
	c.req = netlink.AppendHeader(c.req[:0], msgType(cmd), unix.NLM_F_REQUEST|netlink.FlagDump, 0, len(attrs))
	c.req = append(c.req, attrs...)
	return c.conn.Dump(c.req, func(typ, _ uint16, payload []byte) error {
		if typ != msgType(cmd) {
			return nil
		}
		return fn(payload)
	})
}

// u32Attr is one u32 request attribute, in the host's byte order.
func u32Attr(typ uint16, v uint32) []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint16(b, 8)
	binary.NativeEndian.PutUint16(b[2:], typ)
	binary.NativeEndian.PutUint32(b[4:], v)
	return b
}

// Collect reads every device, port, queue pair and CM identifier. A part
// that fails is left out and its error returned beside what was read; a
// snapshot with a zero Time means nothing could be read.
func (c *Collector) Collect(ctx context.Context) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	s := Snapshot{Time: c.o.Now()}
	err := c.dump(cmdGet, nil, func(b []byte) error {
		d, err := ParseDevice(b)
		if err != nil {
			return err
		}
		s.Devices = append(s.Devices, d)
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("rdma: device dump: %w", err)
	}
	var errs []error
	for i := range s.Devices {
		d := &s.Devices[i]
		err := c.dump(cmdPortGet, u32Attr(attrDevIndex, d.Index), func(b []byte) error {
			dev, p, err := ParsePort(b)
			if err == nil && dev == d.Index {
				d.Ports = append(d.Ports, p)
			}
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("rdma: %s: port dump: %w", d.Name, err))
		}
		if !c.o.NoCounters {
			for j := range d.Ports {
				p := &d.Ports[j]
				if p.Counters, err = c.counters(d, p.Index); err != nil {
					errs = append(errs, fmt.Errorf("rdma: %s port %d: counters: %w", d.Name, p.Index, err))
				}
			}
		}
	}
	// The kernel dumps resources per device (res_get_common_dumpit wants
	// RDMA_NLDEV_ATTR_DEV_INDEX).
	for _, d := range s.Devices {
		err := c.dump(cmdResQPGet, u32Attr(attrDevIndex, d.Index), func(b []byte) error {
			return ParseQPs(b, func(q QP) { s.QPs = append(s.QPs, q) })
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("rdma: %s: queue pair dump: %w", d.Name, err))
		}
		err = c.dump(cmdResCMIDGet, u32Attr(attrDevIndex, d.Index), func(b []byte) error {
			return ParseCMIDs(b, func(id CMID) { s.CMIDs = append(s.CMIDs, id) })
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("rdma: %s: CM identifier dump: %w", d.Name, err))
		}
	}
	c.owners(&s)
	join(&s)
	return s, errors.Join(errs...)
}

// counters asks the library for a port's hardware counters. Its parser
// slices attributes unchecked; a panic on malformed data becomes an error.
func (c *Collector) counters(d *Device, port uint32) (m map[string]uint64, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("malformed reply: %v", r)
		}
	}()
	st, err := c.lib.RdmaPortStatisticList(&vnl.RdmaLink{Attrs: vnl.RdmaLinkAttrs{Index: d.Index, Name: d.Name}}, port)
	if err != nil {
		return nil, err
	}
	return st.Statistics, nil
}

// owners names the process of each user-space queue pair and its
// network namespace, once per pid.
func (c *Collector) owners(s *Snapshot) {
	seen := map[int]int{}
	for i := range s.QPs {
		q := &s.QPs[i]
		if q.PID <= 0 {
			continue
		}
		if j, ok := seen[q.PID]; ok {
			q.Process, q.Netns = s.QPs[j].Process, s.QPs[j].Netns
			continue
		}
		seen[q.PID] = i
		if p, ok := c.procs.Process(q.PID, ""); ok {
			q.Process = p
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join(c.o.ProcRoot, strconv.Itoa(q.PID), "ns", "net"), &st) == nil {
			q.Netns = st.Ino
		}
	}
}

// join sorts the snapshot, marks the CM identifiers the peer initiated
// and points each queue pair at its CM identifier.
func join(s *Snapshot) {
	slices.SortFunc(s.QPs, func(a, b QP) int {
		if a.DeviceIndex != b.DeviceIndex {
			return int(a.DeviceIndex) - int(b.DeviceIndex)
		}
		return cmpU32(a.LQPN, b.LQPN)
	})
	slices.SortFunc(s.CMIDs, func(a, b CMID) int { return cmpU32(a.ID, b.ID) })
	type lkey struct {
		ps   string
		port uint16
	}
	listen := map[lkey][]CMID{}
	for _, id := range s.CMIDs {
		if id.State == "LISTEN" {
			k := lkey{id.PortSpace, id.Src.Port()}
			listen[k] = append(listen[k], id)
		}
	}
	byQP := map[Key]int{}
	for i := range s.CMIDs {
		id := &s.CMIDs[i]
		if id.State != "LISTEN" {
			for _, l := range listen[lkey{id.PortSpace, id.Src.Port()}] {
				if !l.Src.Addr().IsValid() || l.Src.Addr().IsUnspecified() || l.Src.Addr() == id.Src.Addr() {
					id.Inbound = true
				}
			}
		}
		if id.LQPN != 0 && id.Device != "" {
			byQP[Key{id.DeviceIndex, id.LQPN}] = i
		}
	}
	for i := range s.QPs {
		if j, ok := byQP[s.QPs[i].Key()]; ok {
			id := s.CMIDs[j]
			s.QPs[i].CM = &id
		}
	}
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// QueuePairOwners counts the queue pairs of each owning process (by pid),
// reading only the devices and their queue pairs: the cheap question
// whether a process uses RDMA.
func (c *Collector) QueuePairOwners(ctx context.Context) (map[int]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var devs []uint32
	err := c.dump(cmdGet, nil, func(b []byte) error {
		d, err := ParseDevice(b)
		if err == nil {
			devs = append(devs, d.Index)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rdma: device dump: %w", err)
	}
	owners := map[int]int{}
	var errs []error
	for _, d := range devs {
		err := c.dump(cmdResQPGet, u32Attr(attrDevIndex, d), func(b []byte) error {
			return ParseQPs(b, func(q QP) {
				if q.PID > 0 {
					owners[q.PID]++
				}
			})
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("rdma: device %d: queue pair dump: %w", d, err))
		}
	}
	return owners, errors.Join(errs...)
}
