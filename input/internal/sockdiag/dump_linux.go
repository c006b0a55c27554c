package sockdiag

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netlink"
)

const (
	// sockRcvBuf bounds what the kernel may queue before we read; dumps
	// queue one skb per read, so this only matters for a slow reader.
	sockRcvBuf = 1 << 20
	// recvTimeout (SO_RCVTIMEO) keeps a wedged kernel dump from blocking a
	// collection forever.
	recvTimeout = 10 * time.Second
)

// ErrClosed is returned by Dump after Close.
var ErrClosed = errors.New("sockdiag: dumper is closed")

// Dumper dumps sockets over one NETLINK_SOCK_DIAG socket, bound to the
// network namespace it was opened in. It is not safe for concurrent use:
// one dump runs at a time on a netlink socket (the kernel answers EBUSY).
type Dumper struct {
	c   *netlink.Conn
	ns  string // for error messages; "" for the caller's namespace
	req []byte
	p   Parser
}

// Open opens a dumper in the calling thread's network namespace.
func Open() (*Dumper, error) {
	d, err := open("")
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
	d, err := open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("sockdiag: open in netns %s: %w", nsPath, err)
	}
	d.ns = nsPath
	return d, nil
}

func open(nsPath string) (*Dumper, error) {
	c, err := netlink.Open(unix.NETLINK_SOCK_DIAG, netlink.Options{Netns: nsPath, Timeout: recvTimeout, RcvBuf: sockRcvBuf})
	if err != nil {
		return nil, err
	}
	return &Dumper{c: c, req: make([]byte, 0, netlink.HdrLen+inetDiagReqLen)}, nil
}

// Close closes the netlink socket. It is safe to call more than once.
func (d *Dumper) Close() error {
	if err := d.c.Close(); err != nil {
		return fmt.Errorf("sockdiag: close: %w", err)
	}
	return nil
}

// Dump asks the kernel for the sockets req selects and calls fn for each,
// with a Socket that is reused for the next one (copy what you keep). An
// error from fn stops the callbacks and is returned as is; the rest of the
// dump is read and discarded so the Dumper stays usable.
func (d *Dumper) Dump(req Request, fn func(*Socket) error) error {
	if d.c.Closed() {
		return ErrClosed
	}
	if fn == nil {
		return errors.New("sockdiag: Dump needs a callback")
	}
	fromFn, err := d.dump(req, fn)
	if err == nil || fromFn {
		return err
	}
	return &DumpError{Family: req.Family, Protocol: req.Protocol, Netns: d.ns, Err: err}
}

// dump reports whether its error is the callback's, to be passed on as is.
// netlink.Conn.Dump calls back no more after the first error, so fn's
// error, when there is one, is the one returned.
func (d *Dumper) dump(req Request, fn func(*Socket) error) (fromFn bool, err error) {
	msg, err := req.marshal(d.req[:0], 0) // Conn.Dump stamps the sequence number
	if err != nil {
		return false, err
	}
	d.p.Protocol = req.Protocol
	d.p.fnFailed = false
	err = d.c.Dump(msg, func(typ, _ uint16, payload []byte) error {
		return d.p.message(typ, payload, fn)
	})
	return d.p.fnFailed, err
}
