package flows

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
)

// routes looks up and caches the route to each peer, per namespace.
type routes struct {
	ttl time.Duration
	log *slog.Logger
	// tables holds one rtnetlink handle, change watch and cache per
	// namespace.
	tables *netns.Sockets[*routeTable]
	// isSelf says whether a namespace is the collector's own, which needs
	// no setns(2).
	isSelf func(netns.Namespace) bool
}

// routeTable is one namespace's routes: the handle that asks the kernel,
// the socket that hears of changes, and the answers so far.
type routeTable struct {
	h *netlink.Handle
	// watch is a non-blocking NETLINK_ROUTE socket bound to the route and
	// link groups. It is drained at each collection rather than by a
	// goroutine: the kernel queues a notification before the command that
	// changed the route returns, so a change made before Collect is
	// always seen by it, which a channel fed by a reader goroutine would
	// not promise.
	watch   int
	entries map[netip.Addr]routeEntry
	links   map[int]string // ifindex → name, flushed with the entries
	buf     []byte
}

type routeEntry struct {
	r       *Route // nil: no route (unreachable, prohibited)
	expires time.Time
}

func newRoutes(ttl time.Duration, log *slog.Logger, isSelf func(netns.Namespace) bool) *routes {
	if ttl == 0 {
		ttl = defaultRouteTTL
	}
	r := &routes{ttl: ttl, log: log, isSelf: isSelf}
	r.tables = netns.NewSockets(r.open)
	return r
}

func (r *routes) open(ns netns.Namespace) (*routeTable, error) {
	if r.isSelf(ns) {
		return openRouteTable()
	}
	var t *routeTable
	err := netns.Do(ns.Path, func() error {
		var err error
		t, err = openRouteTable()
		return err
	})
	if err != nil && t != nil {
		// Do ran openRouteTable but could not switch back.
		_ = t.Close()
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// openRouteTable opens the sockets in the calling thread's namespace.
func openRouteTable() (*routeTable, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	// A lookup answers at once; the timeout keeps a wedged socket from
	// stalling the collection.
	if err := h.SetSocketTimeout(5 * time.Second); err != nil {
		h.Close()
		return nil, fmt.Errorf("rtnetlink socket timeout: %w", err)
	}
	w, err := openRouteWatch()
	if err != nil {
		h.Close()
		return nil, err
	}
	return &routeTable{h: h, watch: w, entries: map[netip.Addr]routeEntry{}, links: map[int]string{}, buf: make([]byte, 4096)}, nil
}

// openRouteWatch opens the change socket in the calling thread's
// namespace.
func openRouteWatch() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return -1, fmt.Errorf("route watch socket: %w", err)
	}
	// Link changes too: a renamed or deleted device changes the names
	// cached beside the routes.
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE | unix.RTMGRP_LINK}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("route watch bind: %w", err)
	}
	return fd, nil
}

func (t *routeTable) Close() error {
	if t.h != nil {
		t.h.Close()
	}
	if t.watch >= 0 {
		err := unix.Close(t.watch)
		t.watch = -1
		return err
	}
	return nil
}

// changed drains the watch socket and reports whether anything changed
// since the last call. The messages are not parsed: any route or link
// change drops the whole cache of the namespace, which is cheaper than
// working out which peers a prefix covers.
func (t *routeTable) changed() (bool, error) {
	changed := false
	for {
		// A datagram longer than buf is truncated and dropped, which is
		// all a notification needs.
		n, _, err := unix.Recvfrom(t.watch, t.buf, unix.MSG_DONTWAIT)
		switch {
		case err == nil:
			if n > 0 {
				changed = true
			}
		case errors.Is(err, unix.EAGAIN):
			return changed, nil
		case errors.Is(err, unix.ENOBUFS):
			// Notifications were lost: something changed.
			changed = true
		case errors.Is(err, unix.EINTR):
		default:
			return true, fmt.Errorf("route watch: %w", err)
		}
	}
}

// lookup returns the cached route to peer or asks the kernel.
func (t *routeTable) lookup(peer netip.Addr, now time.Time, ttl time.Duration) (*Route, error) {
	if e, ok := t.entries[peer]; ok && now.Before(e.expires) {
		return e.r, nil
	}
	rs, err := t.h.RouteGet(net.IP(peer.AsSlice()))
	if err != nil {
		// No route is an answer too, cached like one: a peer behind an
		// unreachable or prohibit route would otherwise cost a lookup per
		// flow and period.
		if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) ||
			errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL) {
			t.entries[peer] = routeEntry{expires: now.Add(ttl)}
			return nil, nil
		}
		return nil, fmt.Errorf("route get %s: %w", peer, err)
	}
	var r *Route
	if len(rs) > 0 {
		r = &Route{}
		if rs[0].LinkIndex > 0 {
			r.Device = t.linkName(rs[0].LinkIndex)
		}
		r.Gateway = addrOf(rs[0].Gw)
		r.Src = addrOf(rs[0].Src)
	}
	t.entries[peer] = routeEntry{r: r, expires: now.Add(ttl)}
	return r, nil
}

func (t *routeTable) linkName(index int) string {
	if name, ok := t.links[index]; ok {
		return name
	}
	l, err := t.h.LinkByIndex(index)
	if err != nil {
		// The device went away between the two requests: name it by its
		// index, and do not cache that.
		return fmt.Sprintf("if%d", index)
	}
	t.links[index] = l.Attrs().Name
	return t.links[index]
}

func addrOf(ip net.IP) netip.Addr {
	if ip == nil {
		return netip.Addr{}
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// assign sets Route on the connected flows of flows that have none yet
// (final reports keep the route of their last live report). nss are the
// namespaces of the collection; present those visited.
func (r *routes) assign(flows []Flow, nss []netns.Namespace, present map[uint64]bool, now time.Time) error {
	var errs []error
	byIno := make(map[uint64]*routeTable, len(nss))
	for _, ns := range nss {
		if !present[ns.Inode] {
			continue
		}
		if _, done := byIno[ns.Inode]; done {
			continue
		}
		t, err := r.tables.Get(ns)
		if err != nil {
			if !errors.Is(err, netns.ErrUnopenable) {
				r.log.Warn("flows: no routes for a network namespace that cannot be opened", "netns", ns.Inode, "path", ns.Path, "error", err)
			}
			byIno[ns.Inode] = nil
			continue
		}
		ch, err := t.changed()
		if err != nil {
			errs = append(errs, fmt.Errorf("flows: netns %d: %w", ns.Inode, err))
			r.tables.Discard(ns.Inode)
			byIno[ns.Inode] = nil
			continue
		}
		if ch {
			clear(t.entries)
			clear(t.links)
		} else {
			for a, e := range t.entries {
				if !now.Before(e.expires) {
					delete(t.entries, a)
				}
			}
		}
		byIno[ns.Inode] = t
	}
	r.tables.Keep(present)

	// Flows come grouped by namespace and often by peer: remember the
	// last answer.
	var (
		lastNs   uint64
		lastPeer netip.Addr
		lastR    *Route
		has      bool
	)
	for i := range flows {
		f := &flows[i]
		if f.Route != nil || f.Direction == Listening || !f.Remote.IsValid() {
			continue
		}
		peer := f.Remote.Addr().Unmap().WithZone("")
		if peer.IsUnspecified() {
			continue
		}
		if has && f.Netns == lastNs && peer == lastPeer {
			f.Route = lastR
			continue
		}
		t := byIno[f.Netns]
		if t == nil {
			continue
		}
		rt, err := t.lookup(peer, now, r.ttl)
		if err != nil {
			// One error per namespace and collection is enough.
			errs = append(errs, fmt.Errorf("flows: netns %d: %w", f.Netns, err))
			byIno[f.Netns] = nil
			continue
		}
		f.Route = rt
		lastNs, lastPeer, lastR, has = f.Netns, peer, rt, true
	}
	return errors.Join(errs...)
}

func (r *routes) Close() error { return r.tables.Close() }
