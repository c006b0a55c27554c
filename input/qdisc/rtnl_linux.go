package qdisc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
)

// rtnl is one NETLINK_ROUTE socket, answering for the network namespace
// it was created in. It is not safe for concurrent use.
type rtnl struct {
	fd    int
	buf   []byte
	req   []byte
	seq   uint32
	dirty bool
}

const (
	// A dump skb is at most 32 KiB (netlink_recvmsg's cap on its size
	// guess, net/netlink/af_netlink.c); twice that never truncates.
	rtnlBufLen = 64 << 10
	// rtnlTimeoutSec keeps a wedged dump from blocking a collection.
	rtnlTimeoutSec = 10
)

func openRtnl() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	tv := unix.Timeval{Sec: rtnlTimeoutSec}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	// Strict checking (NETLINK_GET_STRICT_CHK, Linux 4.20) makes
	// tc_dump_qdisc honour tcm_ifindex; older kernels refuse the option
	// and dump every device, which the collector filters anyway.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	return &rtnl{fd: fd, buf: make([]byte, rtnlBufLen), req: make([]byte, 0, 64)}, nil
}

// openRtnlIn creates the socket inside the namespace of nsPath; the socket
// keeps answering for that namespace (see netns.Do).
func openRtnlIn(nsPath string) (*rtnl, error) {
	var r *rtnl
	err := netns.Do(nsPath, func() error {
		var err error
		r, err = openRtnl()
		return err
	})
	if err != nil {
		if r != nil {
			r.Close()
		}
		return nil, err
	}
	return r, nil
}

func (r *rtnl) Close() error {
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// dump sends one dump request of type typ with the fixed header hdr and
// calls fn with each answer's type and payload (aliasing the buffer).
func (r *rtnl) dump(typ uint16, hdr []byte, fn func(typ uint16, payload []byte)) error {
	if r.fd < 0 {
		return errors.New("netlink socket closed")
	}
	if r.dirty {
		r.drain()
	}
	r.seq++
	if r.seq == 0 {
		r.seq = 1
	}
	msg := r.req[:nlmsgHdrLen]
	binary.NativeEndian.PutUint32(msg[0:], uint32(nlmsgHdrLen+len(hdr)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(msg[8:], r.seq)
	binary.NativeEndian.PutUint32(msg[12:], 0)
	msg = append(msg, hdr...)
	r.req = msg[:0]
	for {
		_, err := unix.Write(r.fd, msg)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("send request: %w", err)
		}
		break
	}
	cb := func(t uint16, p []byte) error { fn(t, p); return nil }
	for {
		n, err := r.recv(unix.MSG_TRUNC)
		if err != nil {
			r.dirty = true
			return fmt.Errorf("receive: %w", err)
		}
		if n > len(r.buf) {
			// Cannot happen with dump skbs of 32 KiB; resize and report
			// the dump as incomplete rather than guess.
			r.buf = make([]byte, (n+4095)&^4095)
			r.dirty = true
			return fmt.Errorf("a %d-byte message did not fit the buffer", n)
		}
		done, err := frames(r.buf[:n], r.seq, cb)
		if err != nil {
			var ed errDump
			if !errors.As(err, &ed) {
				r.dirty = true
			}
			return err
		}
		if done {
			return nil
		}
	}
}

func (r *rtnl) recv(flags int) (int, error) {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(r.fd),
			uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)), uintptr(flags), 0, 0)
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		default:
			return 0, errno
		}
	}
}

// drain discards what an abandoned dump left queued; later stragglers are
// skipped by sequence number.
func (r *rtnl) drain() {
	for {
		if _, err := r.recv(unix.MSG_TRUNC | unix.MSG_DONTWAIT); err != nil {
			break
		}
	}
	r.dirty = false
}

// links dumps the devices (RTM_GETLINK with a struct ifinfomsg).
func (r *rtnl) links(fn func(linkMsg)) error {
	var hdr [ifinfomsgLn]byte
	hdr[0] = unix.AF_UNSPEC
	var perr error
	err := r.dump(unix.RTM_GETLINK, hdr[:], func(t uint16, p []byte) {
		if t != rtmNewLink {
			return
		}
		l, err := parseLink(p)
		if err != nil {
			perr = err
			return
		}
		fn(l)
	})
	if err != nil {
		return fmt.Errorf("link dump: %w", err)
	}
	return perr
}

// tc dumps the qdiscs (ifindex 0: every device) or the classes of one
// device (tc_dump_tclass answers for tcm_ifindex only).
func (r *rtnl) tc(typ uint16, ifindex int32, fn func(*tcMsg)) error {
	var hdr [tcmsgLen]byte
	hdr[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(hdr[4:], uint32(ifindex))
	var perr error
	err := r.dump(typ, hdr[:], func(t uint16, p []byte) {
		if t != rtmNewQdisc && t != rtmNewTclass {
			return
		}
		m, err := parseTC(p)
		if err != nil {
			perr = err
			return
		}
		fn(&m)
	})
	if err != nil {
		return err
	}
	return perr
}
