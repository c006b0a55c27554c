package netlink

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
)

// bufLen is twice the largest skb a dump produces: netlink_recvmsg caps
// the size it learns for dump skbs (nlk->max_recvmsg_len) at
// SKB_WITH_OVERHEAD(32768) (net/netlink/af_netlink.c), so a read only
// truncates when a family asks for a larger cb->min_dump_alloc. Truncation
// is still detected (MSG_TRUNC) rather than assumed away.
const bufLen = 64 << 10

// ErrClosed is returned by Send, Recv and Dump after Close.
var ErrClosed = errors.New("netlink: socket is closed")

// Options configure Open.
type Options struct {
	// Netns is a namespace file (/run/netns/NAME, /proc/PID/ns/net) to
	// open the socket in; "" is the calling thread's namespace. A netlink
	// socket answers for the namespace it was created in, so only
	// creation needs setns(2) (netns.Do).
	Netns string
	// Timeout (SO_RCVTIMEO) keeps a wedged kernel dump from blocking a
	// reader forever; 0 blocks.
	Timeout time.Duration
	// RcvBuf, when not 0, bounds what the kernel may queue before a read
	// (SO_RCVBUF). A dump queues one skb per read, so this only matters
	// for a slow reader.
	RcvBuf int
}

// Conn is one AF_NETLINK socket. It is not safe for concurrent use: one
// dump runs at a time on a netlink socket (netlink_dump_start answers
// EBUSY).
type Conn struct {
	fd  int
	buf []byte
	seq uint32
	// dirty: a dump was abandoned before NLMSG_DONE; drain before the next
	// request.
	dirty bool
}

// Open opens a netlink socket of protocol (unix.NETLINK_ROUTE, ...). Its
// errors name the step that failed, not the namespace.
func Open(protocol int, o Options) (*Conn, error) {
	if o.Netns == "" {
		return open(protocol, o)
	}
	var c *Conn
	err := netns.Do(o.Netns, func() error {
		var err error
		c, err = open(protocol, o)
		return err
	})
	if err != nil {
		if c != nil {
			// netns.Do failed after fn: the socket exists, but the
			// thread could not switch back.
			_ = c.Close()
		}
		return nil, err
	}
	return c, nil
}

func open(protocol int, o Options) (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, protocol)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if o.RcvBuf > 0 {
		// SO_RCVBUFFORCE (CAP_NET_ADMIN) passes net.core.rmem_max;
		// without the capability the plain option is capped there,
		// which is enough.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, o.RcvBuf) != nil {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, o.RcvBuf); err != nil {
				unix.Close(fd)
				return nil, fmt.Errorf("SO_RCVBUF: %w", err)
			}
		}
	}
	if o.Timeout > 0 {
		tv := unix.NsecToTimeval(o.Timeout.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("SO_RCVTIMEO: %w", err)
		}
	}
	return &Conn{fd: fd, buf: make([]byte, bufLen)}, nil
}

// Close closes the socket. It is safe to call more than once.
func (c *Conn) Close() error {
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

// Closed reports whether Close was called.
func (c *Conn) Closed() bool { return c.fd < 0 }

// SetsockoptInt sets an integer socket option, such as
// NETLINK_GET_STRICT_CHK at level SOL_NETLINK.
func (c *Conn) SetsockoptInt(level, opt, value int) error {
	return unix.SetsockoptInt(c.fd, level, opt, value)
}

// Send sends the request req, a whole message from AppendHeader on, after
// stamping it with the next sequence number, which it returns. What an
// abandoned dump left queued is discarded first.
func (c *Conn) Send(req []byte) (seq uint32, err error) {
	if c.fd < 0 {
		return 0, ErrClosed
	}
	if len(req) < HdrLen {
		return 0, fmt.Errorf("send request: %d bytes are shorter than a netlink header", len(req))
	}
	if c.dirty {
		c.drain()
	}
	c.seq++
	if c.seq == 0 {
		c.seq = 1 // 0 means "any sequence" to Framer.Walk
	}
	ne.PutUint32(req[8:12], c.seq)
	for {
		_, err = unix.Write(c.fd, req)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("send request: %w", err)
	}
	return c.seq, nil
}

// Recv reads one datagram and returns it, aliasing the Conn's buffer until
// the next read. A datagram larger than the buffer is lost: the error wraps
// ErrDumpIncomplete, and the buffer grows for the next read. ENOBUFS also
// wraps ErrDumpIncomplete: the socket overflowed, or netlink_dump could not
// fill its next skb and netlink_recvmsg stored that error in sk_err for
// this read; either way messages were lost while the dump stays running
// (nlk->cb_running), so reading on is how to reach its NLMSG_DONE.
func (c *Conn) Recv() ([]byte, error) {
	if c.fd < 0 {
		return nil, ErrClosed
	}
	n, err := c.recv(unix.MSG_TRUNC)
	switch {
	case err == unix.ENOBUFS:
		return nil, fmt.Errorf("receive: %w: %w", ErrDumpIncomplete, err)
	case err != nil:
		// EAGAIN after SO_RCVTIMEO, or a broken socket.
		return nil, fmt.Errorf("receive: %w", err)
	case n > len(c.buf):
		err := fmt.Errorf("%w: a %d-byte message did not fit the %d-byte buffer", ErrDumpIncomplete, n, len(c.buf))
		c.buf = make([]byte, align4(n))
		return nil, err
	}
	return c.buf[:n], nil
}

// Dump sends the dump request req (see Send) and passes the messages of
// the reply to fn as Framer.Walk does, up to the reply's end. It returns
// the first error, fn's as is.
//
// Once something went wrong, fn is called no more, but the reply is still
// read up to NLMSG_DONE: the kernel keeps the dump running until then and
// refuses another one meanwhile (EBUSY from netlink_dump_start). Only a
// read that fails for good (SO_RCVTIMEO, a broken socket) or data that does
// not frame, which may hide NLMSG_DONE, stop the reading; the next Send
// then drains what is left.
func (c *Conn) Dump(req []byte, fn func(typ, flags uint16, payload []byte) error) error {
	seq, err := c.Send(req)
	if err != nil {
		return err
	}
	var (
		f     Framer
		first error
	)
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	for {
		b, err := c.Recv()
		if err != nil {
			keep(err)
			if errors.Is(err, ErrDumpIncomplete) {
				continue // the dump goes on, without some of its messages
			}
			c.dirty = true
			return first
		}
		// NLMSG_DONE often shares the datagram with the last messages
		// (netlink_dump appends it when it fits): step through to it
		// even after fn failed.
		f.Reset(b, seq)
		for f.Next() {
			if first != nil {
				continue
			}
			if err := fn(f.Type, f.Flags, f.Payload); err != nil {
				keep(err)
			}
		}
		if err := f.Err(); err != nil {
			keep(err)
			if !f.Done() {
				c.dirty = true
				return first
			}
		}
		if f.Done() {
			return first
		}
	}
}

// recv reads one datagram into c.buf. MSG_TRUNC makes the kernel return
// the real length of a datagram larger than the buffer. The raw syscall
// avoids the sockaddr that unix.Recvfrom allocates on every call.
func (c *Conn) recv(flags int) (int, error) {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(c.fd),
			uintptr(unsafe.Pointer(&c.buf[0])), uintptr(len(c.buf)), uintptr(flags), 0, 0)
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

// drain discards what an abandoned dump left queued, without blocking.
// Each read also lets netlink_recvmsg run the dump on (netlink_dump), so a
// dump left mid-way is read to its end here; stale messages that arrive
// later are skipped by sequence number.
func (c *Conn) drain() {
	for {
		if _, err := c.recv(unix.MSG_TRUNC | unix.MSG_DONTWAIT); err != nil && err != unix.ENOBUFS {
			break
		}
	}
	c.dirty = false
}
