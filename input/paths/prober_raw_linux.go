package paths

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
)

// ICMP types of the probes and of the target's answers to them.
const (
	icmpEchoReply    = 0
	icmpEcho         = 8
	icmp6EchoRequest = 128
	icmp6EchoReply   = 129
)

const (
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// rawProbe sends ICMP echo requests or TCP SYNs of one flow identifier
// from a raw socket and reads the answers: ICMP errors from the routers
// and the target's echo reply on a raw ICMP socket, the target's SYN-ACK
// or RST on the raw TCP socket. Raw sockets see every such packet of the
// namespace: an answer is ours when it quotes (or acknowledges) our
// identifier, and the probe's sequence number ties it to the probe.
type rawProbe struct {
	method Method
	v6     bool
	dst    netip.Addr
	src    netip.Addr
	dstSA  unix.Sockaddr
	// icmp receives the ICMP answers (and, for ICMP probes, sends);
	// tcp sends the SYNs and receives the target's answers.
	icmp, tcp int
	// hold is a TCP socket bound to the source port, so that no
	// connection of the host takes it while probes use it.
	hold  int
	id    uint16 // the echo identifier or the TCP source port
	dport uint16
	seq   uint32
	// base is the TCP sequence number of probe 0: the SYN of probe n
	// carries base+n.
	base uint32
	buf  []byte
}

// openICMPProbe opens the raw ICMP socket of an echo probe with the
// identifier id (a random one when 0).
func openICMPProbe(t Target, id uint16) (*rawProbe, error) {
	p := newRawProbe(MethodICMP, t)
	if id == 0 {
		id = uint16(1 + rand.IntN(0xfffe))
	}
	p.id = id
	if err := p.open(t.Netns); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// openTCPProbe opens the raw sockets of a SYN probe to t.Port from the
// source port id (one the kernel picks when 0).
func openTCPProbe(t Target, id uint16) (*rawProbe, error) {
	p := newRawProbe(MethodTCP, t)
	p.id, p.dport, p.base = id, t.Port, rand.Uint32()
	if err := p.open(t.Netns); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func newRawProbe(m Method, t Target) *rawProbe {
	dst := t.Dst.Unmap()
	p := &rawProbe{method: m, v6: !dst.Is4(), dst: dst, icmp: -1, tcp: -1, hold: -1, buf: make([]byte, 1500)}
	if p.v6 {
		p.dstSA = &unix.SockaddrInet6{Addr: dst.As16()}
	} else {
		p.dstSA = &unix.SockaddrInet4{Addr: dst.As4()}
	}
	return p
}

func (p *rawProbe) open(nsPath string) error {
	open := func() error {
		domain, icmpProto := unix.AF_INET, unix.IPPROTO_ICMP
		if p.v6 {
			domain, icmpProto = unix.AF_INET6, unix.IPPROTO_ICMPV6
		}
		var err error
		if p.icmp, err = unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, icmpProto); err != nil {
			return fmt.Errorf("raw icmp socket: %w", err)
		}
		if err := p.filterICMP(); err != nil {
			return err
		}
		if p.method != MethodTCP {
			return nil
		}
		if p.tcp, err = unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP); err != nil {
			return fmt.Errorf("raw tcp socket: %w", err)
		}
		if p.src, err = sourceFor(domain, p.dstSA); err != nil {
			return err
		}
		return p.holdPort(domain)
	}
	if nsPath == "" {
		return open()
	}
	return netns.Do(nsPath, open)
}

// filterICMP lets through the socket only the ICMP types that answer a
// probe (ICMP_FILTER, ICMP6_FILTER: a set bit blocks its type).
func (p *rawProbe) filterICMP() error {
	if !p.v6 {
		pass := uint32(1<<icmpEchoReply | 1<<icmpUnreachable | 1<<icmpTimeExceeded)
		if err := unix.SetsockoptInt(p.icmp, unix.SOL_RAW, unix.ICMP_FILTER, int(^pass)); err != nil {
			return fmt.Errorf("icmp filter: %w", err)
		}
		return nil
	}
	var f unix.ICMPv6Filter
	for i := range f.Data {
		f.Data[i] = ^uint32(0)
	}
	for _, typ := range []uint8{icmp6Unreachable, icmp6TimeExceeded, icmp6EchoReply} {
		f.Data[typ>>5] &^= 1 << (typ & 31)
	}
	if err := unix.SetsockoptICMPv6Filter(p.icmp, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &f); err != nil {
		return fmt.Errorf("icmpv6 filter: %w", err)
	}
	return nil
}

// sourceFor is the address the kernel sends from to dst: the TCP
// checksum covers it. A connected UDP socket asks the routing table
// without sending anything.
func sourceFor(domain int, dst unix.Sockaddr) (netip.Addr, error) {
	fd, err := unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route lookup socket: %w", err)
	}
	defer unix.Close(fd)
	var to unix.Sockaddr
	switch d := dst.(type) {
	case *unix.SockaddrInet4:
		to = &unix.SockaddrInet4{Addr: d.Addr, Port: 9}
	case *unix.SockaddrInet6:
		to = &unix.SockaddrInet6{Addr: d.Addr, Port: 9}
	}
	if err := unix.Connect(fd, to); err != nil {
		return netip.Addr{}, fmt.Errorf("route lookup: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route lookup: %w", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr), nil
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr), nil
	}
	return netip.Addr{}, errors.New("route lookup: no source address")
}

// holdPort binds a TCP socket to the source port (or lets the kernel pick
// one when p.id is 0) and keeps it for the probes' lifetime.
func (p *rawProbe) holdPort(domain int) error {
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("tcp socket: %w", err)
	}
	p.hold = fd
	var sa unix.Sockaddr
	if p.v6 {
		sa = &unix.SockaddrInet6{Port: int(p.id), Addr: p.src.As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(p.id), Addr: p.src.As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind source port %d: %w", p.id, err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	switch got := got.(type) {
	case *unix.SockaddrInet4:
		p.id = uint16(got.Port)
	case *unix.SockaddrInet6:
		p.id = uint16(got.Port)
	}
	return nil
}

func (p *rawProbe) flowID() uint16 { return p.id }

func (p *rawProbe) Close() {
	for _, fd := range []*int{&p.icmp, &p.tcp, &p.hold} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// send sends probe number p.seq+1 with the TTL.
func (p *rawProbe) send(ttl int) (uint32, error) {
	fd := p.icmp
	if p.method == MethodTCP {
		fd = p.tcp
	}
	level, opt := unix.SOL_IP, unix.IP_TTL
	if p.v6 {
		level, opt = unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS
	}
	if err := unix.SetsockoptInt(fd, level, opt, ttl); err != nil {
		return 0, fmt.Errorf("set ttl %d: %w", ttl, err)
	}
	p.seq++
	var pkt []byte
	if p.method == MethodTCP {
		pkt = p.syn(p.seq)
	} else {
		pkt = p.echo(p.seq)
	}
	if err := unix.Sendto(fd, pkt, 0, p.dstSA); err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	return p.seq, nil
}

// echo is an echo request with the sequence number seq whose checksum
// is the same for every seq: the payload's first word is the complement
// of seq, so the two add up to 0xffff in one's complement arithmetic.
// Routers that hash the first bytes past the IP header (the checksum
// included, as some balancers do) then see one flow. For ICMPv6 the
// kernel fills in the checksum, over the same constant sum.
func (p *rawProbe) echo(seq uint32) []byte {
	b := make([]byte, 16)
	b[0] = icmpEcho
	if p.v6 {
		b[0] = icmp6EchoRequest
	}
	binary.BigEndian.PutUint16(b[4:], p.id)
	binary.BigEndian.PutUint16(b[6:], uint16(seq))
	binary.BigEndian.PutUint16(b[8:], ^uint16(seq))
	copy(b[10:], magic[:])
	if !p.v6 {
		binary.BigEndian.PutUint16(b[2:], checksum(0, b))
	}
	return b
}

// syn is a SYN from the source port to the flow's port with sequence
// number base+seq and an MSS option, as a connect(2) would send.
func (p *rawProbe) syn(seq uint32) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint16(b[0:], p.id)
	binary.BigEndian.PutUint16(b[2:], p.dport)
	binary.BigEndian.PutUint32(b[4:], p.base+seq)
	b[12] = 6 << 4 // 24 bytes of header
	b[13] = tcpSYN
	binary.BigEndian.PutUint16(b[14:], 64240)
	b[20], b[21] = 2, 4 // MSS
	binary.BigEndian.PutUint16(b[22:], 1460)
	binary.BigEndian.PutUint16(b[16:], checksum(p.pseudoHeader(len(b)), b))
	return b
}

// pseudoHeader is the one's complement sum of the TCP pseudo-header
// (RFC 793, RFC 8200 8.1).
func (p *rawProbe) pseudoHeader(n int) uint32 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	if p.v6 {
		s, d := p.src.As16(), p.dst.As16()
		add(s[:])
		add(d[:])
	} else {
		s, d := p.src.As4(), p.dst.As4()
		add(s[:])
		add(d[:])
	}
	return sum + unix.IPPROTO_TCP + uint32(n)
}

// checksum is the Internet checksum (RFC 1071) of b, starting from sum.
func checksum(sum uint32, b []byte) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// await reads answers until the one to probe seq arrives or the
// deadline passes.
func (p *rawProbe) await(ctx context.Context, seq uint32, deadline time.Time) (answer, bool, error) {
	fds := []unix.PollFd{{Fd: int32(p.icmp), Events: unix.POLLIN}}
	if p.tcp >= 0 {
		fds = append(fds, unix.PollFd{Fd: int32(p.tcp), Events: unix.POLLIN})
	}
	for {
		for _, f := range fds {
			for {
				a, ok, more, err := p.read(int(f.Fd))
				if err != nil {
					return answer{}, false, err
				}
				if ok && a.seq == seq {
					return a, true, nil
				}
				if !more {
					break
				}
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return answer{}, false, nil
		}
		if err := ctx.Err(); err != nil {
			return answer{}, false, err
		}
		wait := min(left, 100*time.Millisecond)
		if _, err := unix.Poll(fds, int(wait.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return answer{}, false, fmt.Errorf("poll: %w", err)
		}
	}
}

// read takes one packet off fd: ok when it answers one of our probes;
// more is false when there was none.
func (p *rawProbe) read(fd int) (a answer, ok, more bool, err error) {
	n, from, err := unix.Recvfrom(fd, p.buf, unix.MSG_DONTWAIT)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return answer{}, false, false, nil
		}
		return answer{}, false, false, fmt.Errorf("read raw socket: %w", err)
	}
	a.at = time.Now()
	var src netip.Addr
	if sa, isV6 := from.(*unix.SockaddrInet6); isV6 {
		src = netip.AddrFrom16(sa.Addr)
	}
	ok = p.parse(fd == p.tcp, p.buf[:n], src, &a)
	return a, ok, true, nil
}

// parse reads one packet of the raw TCP socket (tcp) or the raw ICMP one
// into a: whether it answers one of our probes. An IPv4 raw socket reads
// the IP header too; an IPv6 one does not, and src is the sender. Any
// packet of the namespace arrives here, so nothing in it is trusted.
func (p *rawProbe) parse(tcp bool, b []byte, src netip.Addr, a *answer) bool {
	a.from = src
	if !p.v6 {
		if len(b) < 20 {
			return false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || ihl > len(b) {
			return false
		}
		a.from = netip.AddrFrom4([4]byte(b[12:16]))
		b = b[ihl:]
	}
	if tcp {
		return p.tcpAnswer(b, a)
	}
	return p.icmpAnswer(b, a)
}

// tcpAnswer: the target's SYN-ACK or RST acknowledging a SYN probe.
func (p *rawProbe) tcpAnswer(b []byte, a *answer) bool {
	if len(b) < 20 || a.from != p.dst || binary.BigEndian.Uint16(b[0:]) != p.dport || binary.BigEndian.Uint16(b[2:]) != p.id {
		return false
	}
	flags := b[13]
	if flags&tcpACK == 0 || flags&(tcpSYN|tcpRST) == 0 {
		return false
	}
	a.seq = binary.BigEndian.Uint32(b[8:]) - 1 - p.base
	a.tcpFlags = flags & 0x3f
	return true
}

// icmpAnswer: an echo reply to our identifier, or an ICMP error quoting
// one of our probes to the target.
func (p *rawProbe) icmpAnswer(b []byte, a *answer) bool {
	if len(b) < 8 {
		return false
	}
	a.typ, a.code = b[0], b[1]
	echoReply, timeExceeded, unreachable := uint8(icmpEchoReply), uint8(icmpTimeExceeded), uint8(icmpUnreachable)
	if p.v6 {
		echoReply, timeExceeded, unreachable = icmp6EchoReply, icmp6TimeExceeded, icmp6Unreachable
	}
	switch a.typ {
	case echoReply:
		if p.method != MethodICMP || a.from != p.dst || binary.BigEndian.Uint16(b[4:]) != p.id {
			return false
		}
		a.seq = p.fullSeq(binary.BigEndian.Uint16(b[6:]))
		return true
	case timeExceeded, unreachable:
	default:
		return false
	}
	// The quoted probe: its IP header, then at least 8 bytes of ICMP or
	// TCP header (RFC 792, RFC 4443 3.1).
	q := b[8:]
	var proto uint8
	var qdst netip.Addr
	if p.v6 {
		if len(q) < 48 {
			return false
		}
		proto, qdst, q = q[6], netip.AddrFrom16([16]byte(q[24:40])), q[40:]
	} else {
		if len(q) < 28 {
			return false
		}
		ihl := int(q[0]&0x0f) * 4
		if ihl < 20 || len(q) < ihl+8 {
			return false
		}
		proto, qdst, q = q[9], netip.AddrFrom4([4]byte(q[16:20])), q[ihl:]
	}
	if qdst != p.dst {
		return false
	}
	switch p.method {
	case MethodICMP:
		want := uint8(unix.IPPROTO_ICMP)
		if p.v6 {
			want = unix.IPPROTO_ICMPV6
		}
		if proto != want || binary.BigEndian.Uint16(q[4:]) != p.id {
			return false
		}
		a.seq = p.fullSeq(binary.BigEndian.Uint16(q[6:]))
	case MethodTCP:
		if proto != unix.IPPROTO_TCP || binary.BigEndian.Uint16(q[0:]) != p.id || binary.BigEndian.Uint16(q[2:]) != p.dport {
			return false
		}
		a.seq = binary.BigEndian.Uint32(q[4:]) - p.base
	}
	return true
}

// fullSeq widens a quoted 16-bit echo sequence number to the probe
// counter, whose last probe it must be close to.
func (p *rawProbe) fullSeq(s uint16) uint32 {
	return p.seq&^0xffff | uint32(s)
}
