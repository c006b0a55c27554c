package sockdiag

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
)

const (
	// recvBufLen is twice the largest skb a dump produces: netlink_recvmsg
	// caps the size it learns for dump skbs at SKB_WITH_OVERHEAD(32768)
	// (net/netlink/af_netlink.c) and inet_diag sets no larger
	// min_dump_alloc, so a read never truncates. Truncation is still
	// detected (MSG_TRUNC) rather than assumed away.
	recvBufLen = 64 << 10
	// sockRcvBuf bounds what the kernel may queue before we read; dumps
	// queue one skb per read, so this only matters for a slow reader.
	sockRcvBuf = 1 << 20
	// recvTimeoutSec (SO_RCVTIMEO) keeps a wedged kernel dump from blocking a collection
	// forever.
	recvTimeoutSec = 10
)

// ErrClosed is returned by Dump after Close.
var ErrClosed = errors.New("sockdiag: dumper is closed")

// Dumper dumps sockets over one NETLINK_SOCK_DIAG socket, bound to the
// network namespace it was opened in. It is not safe for concurrent use:
// one dump runs at a time on a netlink socket (the kernel answers EBUSY).
type Dumper struct {
	fd    int
	ns    string // for error messages; "" for the caller's namespace
	buf   []byte
	req   []byte
	seq   uint32
	dirty bool // a dump was abandoned mid-way: drain before the next one
	p     Parser
}

// Open opens a dumper in the calling thread's network namespace.
func Open() (*Dumper, error) {
	d, err := open()
	if err != nil {
		return nil, fmt.Errorf("sockdiag: open: %w", err)
	}
	return d, nil
}

// OpenIn opens a dumper in the network namespace of the file nsPath
// (/run/netns/NAME, /proc/PID/ns/net). A netlink socket answers for the
// namespace it was created in, so only creation needs setns(2), done on a
// dedicated locked thread.
func OpenIn(nsPath string) (*Dumper, error) {
	var d *Dumper
	err := netns.Do(nsPath, func() error {
		var err error
		d, err = open()
		return err
	})
	if err != nil {
		if d != nil {
			_ = d.Close()
		}
		return nil, fmt.Errorf("sockdiag: open in netns %s: %w", nsPath, err)
	}
	d.ns = nsPath
	return d, nil
}

func open() (*Dumper, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	// SO_RCVBUFFORCE (CAP_NET_ADMIN) passes net.core.rmem_max; without
	// the capability the plain option is capped there, which is enough.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, sockRcvBuf) != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, sockRcvBuf); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("SO_RCVBUF: %w", err)
		}
	}
	tv := unix.Timeval{Sec: recvTimeoutSec}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	return &Dumper{
		fd:  fd,
		buf: make([]byte, recvBufLen),
		req: make([]byte, 0, nlmsgHdrLen+inetDiagReqLen),
	}, nil
}

// Close closes the netlink socket. It is safe to call more than once.
func (d *Dumper) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	if err != nil {
		return fmt.Errorf("sockdiag: close: %w", err)
	}
	return nil
}

// Dump asks the kernel for the sockets req selects and calls fn for each,
// with a Socket that is reused for the next one (copy what you keep). An
// error from fn stops the callbacks and is returned as is; the rest of the
// dump is read and discarded so the Dumper stays usable.
func (d *Dumper) Dump(req Request, fn func(*Socket) error) error {
	if d.fd < 0 {
		return ErrClosed
	}
	if fn == nil {
		return errors.New("sockdiag: Dump needs a callback")
	}
	fromFn, err := d.dump(req, fn)
	if err == nil || fromFn {
		return err
	}
	where := ""
	if d.ns != "" {
		where = " in netns " + d.ns
	}
	return fmt.Errorf("sockdiag: dump family %d protocol %d%s: %w", req.Family, req.Protocol, where, err)
}

// dump reports whether its error is the callback's, to be passed on as is.
func (d *Dumper) dump(req Request, fn func(*Socket) error) (fromFn bool, err error) {
	if d.dirty {
		d.drainQueued()
	}
	d.seq++
	if d.seq == 0 {
		d.seq = 1 // 0 means "any sequence" to parse
	}
	msg, err := req.marshal(d.req[:0], d.seq)
	if err != nil {
		return false, err
	}
	for {
		_, err = unix.Write(d.fd, msg)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("send request: %w", err)
	}
	d.p.Protocol = req.Protocol

	// Once something went wrong, stop calling fn but keep reading up to
	// NLMSG_DONE: the kernel keeps the dump running until then and refuses
	// a new one meanwhile (EBUSY from netlink_dump_start).
	var first error
	fail := func(err error, isFn bool) {
		if first == nil {
			first, fromFn = err, isFn
		}
	}
	cb := fn
	for {
		n, err := d.recv()
		switch {
		case err == unix.ENOBUFS:
			// The socket overflowed. A dump resumes on the next read,
			// but callers are told the result may lack sockets.
			fail(fmt.Errorf("receive: %w: %w", ErrDumpIncomplete, err), false)
			cb = nil
			continue
		case err != nil:
			// EAGAIN after SO_RCVTIMEO, or a broken socket.
			d.dirty = true
			fail(fmt.Errorf("receive: %w", err), false)
			return fromFn, first
		case n > len(d.buf):
			fail(fmt.Errorf("%w: a %d-byte message did not fit the %d-byte buffer", ErrDumpIncomplete, n, len(d.buf)), false)
			cb = nil
			d.buf = make([]byte, align4(n))
			continue
		}
		done, err := d.p.parse(d.buf[:n], d.seq, cb)
		if err != nil {
			fail(err, d.p.fnFailed)
			if !done && d.p.fnFailed {
				// NLMSG_DONE often shares the read with the last sockets
				// (netlink_dump appends it when it fits): look for it.
				cb = nil
				done, err = d.p.parse(d.buf[:n], d.seq, nil)
			}
			if !done && err != nil {
				// A message we cannot frame may hide NLMSG_DONE: do not
				// wait for it; flush what is queued before the next dump.
				d.dirty = true
				return fromFn, first
			}
		}
		if done {
			return fromFn, first
		}
	}
}

// recv reads one datagram. MSG_TRUNC makes the kernel return the real length
// of a message larger than the buffer. The raw syscall avoids the sockaddr
// that unix.Recvfrom allocates on every call.
func (d *Dumper) recv() (int, error) {
	return d.recvFlags(unix.MSG_TRUNC)
}

func (d *Dumper) recvFlags(flags int) (int, error) {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(d.fd),
			uintptr(unsafe.Pointer(&d.buf[0])), uintptr(len(d.buf)), uintptr(flags), 0, 0)
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

// drainQueued discards what an abandoned dump left queued, without
// blocking; stale messages that arrive later are skipped by sequence number.
func (d *Dumper) drainQueued() {
	for {
		if _, err := d.recvFlags(unix.MSG_TRUNC | unix.MSG_DONTWAIT); err != nil && err != unix.ENOBUFS {
			break
		}
	}
	d.dirty = false
}
