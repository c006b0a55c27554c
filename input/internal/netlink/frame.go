// Package netlink is the dump socket the netlink inputs share: an
// AF_NETLINK socket opened in a network namespace (Conn, Linux only) and the
// framing of the kernel's replies (Framer), so that how a dump is sent,
// read, resumed and ended is written once for NETLINK_SOCK_DIAG and
// NETLINK_ROUTE alike. Decoding the payloads stays with each protocol.
package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// Constants from linux/netlink.h, spelled out so the framing builds (and
// fuzzes) on any OS.
const (
	HdrLen = 16 // struct nlmsghdr

	TypeNoop    = 1 // NLMSG_NOOP
	TypeError   = 2 // NLMSG_ERROR
	TypeDone    = 3 // NLMSG_DONE
	TypeOverrun = 4 // NLMSG_OVERRUN
	// TypeMin is NLMSG_MIN_TYPE: types below it are the kernel's own
	// control messages, not a protocol's.
	TypeMin = 0x10

	FlagRequest  = 0x1           // NLM_F_REQUEST
	FlagMulti    = 0x2           // NLM_F_MULTI
	FlagDumpIntr = 0x10          // NLM_F_DUMP_INTR
	FlagDump     = 0x100 | 0x200 // NLM_F_DUMP: NLM_F_ROOT | NLM_F_MATCH
)

// Sentinel errors, for errors.Is.
var (
	// ErrMalformed marks data that does not frame: a length that runs past
	// its datagram or below a header.
	ErrMalformed = errors.New("malformed netlink data")
	// ErrDumpIncomplete marks a dump that lost messages (ENOBUFS,
	// NLMSG_OVERRUN, a truncated read): what reached the callback was
	// real, but some is missing.
	ErrDumpIncomplete = errors.New("dump incomplete")
	// ErrDumpInterrupted marks a dump the kernel flagged NLM_F_DUMP_INTR:
	// what it walked changed under it, so the set may be inconsistent.
	ErrDumpInterrupted = errors.New("dump interrupted by a concurrent change")
)

// ne is the byte order of netlink headers: the host's.
var ne = binary.NativeEndian

// KernelError is an errno the kernel answered a request with, in
// NLMSG_ERROR or as the status of NLMSG_DONE. errors.Is and errors.As see
// the syscall.Errno, and ErrDumpIncomplete for ENOBUFS.
type KernelError struct{ Errno syscall.Errno }

func (e *KernelError) Error() string {
	if e.Errno == syscall.ENOBUFS {
		return "kernel: " + ErrDumpIncomplete.Error() + ": " + e.Errno.Error()
	}
	return "kernel: " + e.Errno.Error()
}

func (e *KernelError) Unwrap() []error {
	if e.Errno == syscall.ENOBUFS {
		return []error{ErrDumpIncomplete, e.Errno}
	}
	return []error{e.Errno}
}

// AppendHeader appends the nlmsghdr of a request whose payload, appended
// next by the caller, is payloadLen bytes. Conn.Send overwrites seq with
// its own; nlmsg_pid is 0 for the kernel to fill in with our port.
func AppendHeader(b []byte, typ, flags uint16, seq uint32, payloadLen int) []byte {
	b = ne.AppendUint32(b, uint32(HdrLen+payloadLen))
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, flags)
	b = ne.AppendUint32(b, seq)
	return ne.AppendUint32(b, 0)
}

// Framer frames the reply to one request, datagram by datagram: Walk
// hands its messages to a callback, Reset and Next step through them
// without one. It keeps what outlives a datagram: whether a message of the
// dump carried NLM_F_DUMP_INTR, reported when the dump ends. The zero value
// is ready; a Framer is not safe for concurrent use.
type Framer struct {
	// Type, Flags and Payload are the message Next stopped at. Payload
	// aliases the datagram.
	Type, Flags uint16
	Payload     []byte

	b    []byte
	off  int
	seq  uint32
	intr bool
	done bool
	err  error
}

// Walk walks the netlink messages of one datagram b. Messages whose
// sequence number is not seq are skipped when seq is not 0, so stale
// replies of an abandoned dump never reach fn. fn gets the type, flags and
// payload (aliasing b) of every other message of type TypeMin or above;
// its error stops the walk and is returned as is. A nil fn only looks for
// the end.
//
// done reports that the reply ended: NLMSG_DONE, NLMSG_ERROR (an
// acknowledgement when its errno is 0) or NLMSG_OVERRUN. The end carries
// the dump's error: a *KernelError, ErrDumpIncomplete for an overrun, or
// ErrDumpInterrupted if any message of the dump was flagged
// NLM_F_DUMP_INTR. Data that does not frame yields an error wrapping
// ErrMalformed.
func (f *Framer) Walk(b []byte, seq uint32, fn func(typ, flags uint16, payload []byte) error) (done bool, err error) {
	f.Reset(b, seq)
	for f.Next() {
		if fn == nil {
			continue
		}
		if err := fn(f.Type, f.Flags, f.Payload); err != nil {
			return false, err
		}
	}
	return f.Done(), f.Err()
}

// Reset starts on datagram b, for the messages of sequence seq (0: any).
// The interruption flag of the dump is kept.
func (f *Framer) Reset(b []byte, seq uint32) {
	*f = Framer{b: b, seq: seq, intr: f.intr}
}

// Next advances to the next message for the caller, as Walk passes them
// to fn; it returns false at the end of the datagram, at the end of the
// reply or on data that does not frame. It is Walk without an indirect call
// per message, for decoders whose messages cost little more than that.
func (f *Framer) Next() bool {
	for f.err == nil && !f.done && f.off < len(f.b) {
		rest := f.b[f.off:]
		if len(rest) < HdrLen {
			f.err = malformed("%d trailing bytes at offset %d are shorter than a netlink header", len(rest), f.off)
			break
		}
		l := ne.Uint32(rest[0:4])
		if l < HdrLen || uint64(l) > uint64(len(rest)) {
			f.err = malformed("netlink message at offset %d has length %d, %d bytes left", f.off, l, len(rest))
			break
		}
		typ := ne.Uint16(rest[4:6])
		flags := ne.Uint16(rest[6:8])
		// Messages start 4-byte aligned (NLMSG_ALIGN); the last one of a
		// datagram need not be padded.
		f.off += min(align4(int(l)), len(rest))
		if f.seq != 0 && ne.Uint32(rest[8:12]) != f.seq {
			continue
		}
		if flags&FlagDumpIntr != 0 {
			// nl_dump_check_consistent flags the message being filled
			// when the walked table changed; NLMSG_DONE may be that one.
			f.intr = true
		}
		if typ >= TypeMin {
			f.Type, f.Flags, f.Payload = typ, flags, rest[HdrLen:l]
			return true
		}
		f.control(typ, rest[HdrLen:l])
	}
	f.Payload = nil
	return false
}

// control handles the kernel's own messages: the end of a reply, or
// NLMSG_NOOP and reserved types, which carry nothing.
func (f *Framer) control(typ uint16, payload []byte) {
	switch typ {
	case TypeDone:
		f.done = true
		// The payload is the dump callback's final return value
		// (netlink_dump, nlk->dump_done_errno): 0 or a negative errno.
		if len(payload) >= 4 {
			if e := int32(ne.Uint32(payload)); e < 0 {
				f.err = &KernelError{syscall.Errno(-int64(e))}
			}
		}
	case TypeError:
		f.done = true
		// struct nlmsgerr: a negative errno, 0 for an acknowledgement.
		// netlink_dump_start refuses a dump this way (EBUSY while one
		// runs on the socket).
		if len(payload) < 4 {
			f.err = malformed("NLMSG_ERROR payload of %d bytes", len(payload))
		} else if e := int32(ne.Uint32(payload)); e != 0 {
			f.err = &KernelError{syscall.Errno(-int64(e))}
		}
	case TypeOverrun:
		f.done = true
		f.err = fmt.Errorf("NLMSG_OVERRUN: %w", ErrDumpIncomplete)
	default:
		return
	}
	// The reply ended: report an interruption flagged during it, unless
	// a more specific error did, and forget it.
	if f.err == nil && f.intr {
		f.err = ErrDumpInterrupted
	}
	f.intr = false
}

// Done reports that the reply ended (NLMSG_DONE, NLMSG_ERROR or
// NLMSG_OVERRUN) in the datagram of the last Reset.
func (f *Framer) Done() bool { return f.done }

// Err is the error that stopped Next: the end's (see Walk) or data that
// does not frame.
func (f *Framer) Err() error { return f.err }

func align4(n int) int { return (n + 3) &^ 3 }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
