package paths

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
)

// ICMP types (RFC 792, RFC 4443) the prober tells apart.
const (
	icmpTimeExceeded  = 11
	icmpUnreachable   = 3
	icmp6TimeExceeded = 3
	icmp6Unreachable  = 1
)

// origins of struct sock_extended_err (linux/errqueue.h).
const (
	eeOriginICMP  = 2
	eeOriginICMP6 = 3
)

// magic starts every probe's payload, followed by its sequence number: a
// router quotes the payload back (Linux quotes as much as fits), which
// ties an answer to its probe.
var magic = [4]byte{'f', 'l', 'p', 't'}

// Prober traces targets. Trace may be called from several goroutines:
// they share the rate limit.
type Prober struct {
	opts   Options
	bucket *bucket
}

// New checks o and returns a prober. ICMP and TCP probes need raw
// sockets (CAP_NET_RAW): without them the prober says so in one log line
// and probes with UDP, which needs no privilege; Method tells which.
func New(o Options) (*Prober, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.Method != MethodUDP {
		if err := canRaw(); err != nil {
			o.Logger.Warn(fmt.Sprintf("paths: %s probes need CAP_NET_RAW, which this process does not have: probing with UDP instead", o.Method), "error", err.Error())
			o.Method = MethodUDP
		}
	}
	return &Prober{opts: o, bucket: newBucket(o.Rate, o.Burst, o.Now)}, nil
}

// Method is the kind of probe the prober sends: Options.Method, or UDP
// when raw sockets were refused.
func (p *Prober) Method() Method { return p.opts.Method }

// canRaw opens and closes a raw socket: only a process with CAP_NET_RAW
// in the user namespace owning its network namespace may.
func canRaw() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	unix.Close(fd)
	return nil
}

// flowProbe sends the probes of one flow identifier and reads their
// answers; one probe is in flight at a time.
type flowProbe interface {
	send(ttl int) (uint32, error)
	await(ctx context.Context, seq uint32, deadline time.Time) (answer, bool, error)
	// flowID is the identifier kept constant over the probes: the UDP or
	// TCP source port, or the ICMP echo identifier.
	flowID() uint16
	Close()
}

// probeSocket is one path's UDP socket: its source port is the path's
// constant flow identifier.
type probeSocket struct {
	fd   int
	v6   bool
	dst  unix.Sockaddr
	seq  uint32
	buf  []byte
	oob  []byte
	port uint16
}

func openProbeSocket(t Target, srcPort, port uint16) (*probeSocket, error) {
	s := &probeSocket{fd: -1, v6: !t.Dst.Unmap().Is4(), buf: make([]byte, 1500), oob: make([]byte, 512)}
	dst := t.Dst.Unmap()
	open := func() error {
		domain := unix.AF_INET
		if s.v6 {
			domain = unix.AF_INET6
		}
		fd, err := unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("udp socket: %w", err)
		}
		s.fd = fd
		return nil
	}
	var err error
	if t.Netns == "" {
		err = open()
	} else {
		err = netns.Do(t.Netns, open)
	}
	if err != nil {
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
		return nil, err
	}
	level, opt, bind := unix.SOL_IP, unix.IP_RECVERR, unix.Sockaddr(&unix.SockaddrInet4{Port: int(srcPort)})
	if s.v6 {
		level, opt, bind = unix.SOL_IPV6, unix.IPV6_RECVERR, &unix.SockaddrInet6{Port: int(srcPort)}
		s.dst = &unix.SockaddrInet6{Port: int(port), Addr: dst.As16()}
	} else {
		s.dst = &unix.SockaddrInet4{Port: int(port), Addr: dst.As4()}
	}
	if err := unix.SetsockoptInt(s.fd, level, opt, 1); err != nil {
		s.Close()
		return nil, fmt.Errorf("recverr: %w", err)
	}
	// Bound once: every probe of the path leaves from this port.
	if err := unix.Bind(s.fd, bind); err != nil {
		s.Close()
		return nil, fmt.Errorf("bind: %w", err)
	}
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		s.port = uint16(sa.Port)
	case *unix.SockaddrInet6:
		s.port = uint16(sa.Port)
	}
	return s, nil
}

func (s *probeSocket) flowID() uint16 { return s.port }

func (s *probeSocket) Close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
}

// send sends one probe with the given TTL and returns its sequence
// number.
func (s *probeSocket) send(ttl int) (uint32, error) {
	level, opt := unix.SOL_IP, unix.IP_TTL
	if s.v6 {
		level, opt = unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS
	}
	if err := unix.SetsockoptInt(s.fd, level, opt, ttl); err != nil {
		return 0, fmt.Errorf("set ttl %d: %w", ttl, err)
	}
	s.seq++
	var p [8]byte
	copy(p[:], magic[:])
	binary.BigEndian.PutUint32(p[4:], s.seq)
	for range 2 {
		err := unix.Sendto(s.fd, p[:], 0, s.dst)
		if err == nil {
			return s.seq, nil
		}
		// The socket's pending error (sk_err) of an earlier answer fails
		// a send; reading it clears it.
		if errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENETUNREACH) {
			s.drain()
			continue
		}
		return 0, fmt.Errorf("send: %w", err)
	}
	return 0, fmt.Errorf("send: the socket keeps reporting errors")
}

// answer is one ICMP reply to a probe.
type answer struct {
	seq       uint32
	from      netip.Addr
	typ, code uint8
	// tcpFlags are those of a TCP segment the target answered a SYN
	// probe with (SYN-ACK or RST); 0 for an ICMP answer.
	tcpFlags uint8
	at       time.Time
}

// drain empties the error queue, dropping what is there.
func (s *probeSocket) drain() {
	for {
		if _, ok, _ := s.read(); !ok {
			return
		}
	}
}

// read takes one entry off the error queue; ok is false when it is
// empty.
func (s *probeSocket) read() (answer, bool, error) {
	n, oobn, _, _, err := unix.Recvmsg(s.fd, s.buf, s.oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return answer{}, false, nil
		}
		return answer{}, false, fmt.Errorf("read error queue: %w", err)
	}
	a := answer{at: time.Now()}
	if n >= 8 && [4]byte(s.buf[:4]) == magic {
		a.seq = binary.BigEndian.Uint32(s.buf[4:8])
	}
	msgs, err := unix.ParseSocketControlMessage(s.oob[:oobn])
	if err != nil {
		return answer{}, true, nil
	}
	for _, m := range msgs {
		if !(m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR) &&
			!(m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
			continue
		}
		// struct sock_extended_err (16 bytes), then the offender's
		// sockaddr (SO_EE_OFFENDER).
		d := m.Data
		if len(d) < 16 || (d[4] != eeOriginICMP && d[4] != eeOriginICMP6) {
			continue
		}
		a.typ, a.code = d[5], d[6]
		off := d[16:]
		if len(off) >= 8 && binary.LittleEndian.Uint16(off) == unix.AF_INET {
			a.from = netip.AddrFrom4([4]byte(off[4:8]))
		} else if len(off) >= 24 && binary.LittleEndian.Uint16(off) == unix.AF_INET6 {
			a.from = netip.AddrFrom16([16]byte(off[8:24])).Unmap()
		}
		return a, true, nil
	}
	return answer{}, true, nil
}

// await waits until the answer to probe seq arrives or the timeout ends.
func (s *probeSocket) await(ctx context.Context, seq uint32, deadline time.Time) (answer, bool, error) {
	for {
		for {
			a, ok, err := s.read()
			if err != nil {
				return answer{}, false, err
			}
			if !ok {
				break
			}
			// An answer without a readable sequence number (a router
			// that quotes only 8 bytes) is the outstanding probe's: one
			// probe is in flight at a time.
			if a.from.IsValid() && (a.seq == seq || a.seq == 0) {
				return a, true, nil
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return answer{}, false, nil
		}
		if err := ctx.Err(); err != nil {
			return answer{}, false, err
		}
		// Short polls keep ctx's end noticed.
		wait := min(left, 100*time.Millisecond)
		fds := []unix.PollFd{{Fd: int32(s.fd)}}
		if _, err := unix.Poll(fds, int(wait.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return answer{}, false, fmt.Errorf("poll: %w", err)
		}
	}
}

// Trace probes t hop by hop, once per flow identifier, until the target
// answers or MaxTTL, and merges what each TTL found.
func (p *Prober) Trace(ctx context.Context, t Target) (Path, error) {
	if !t.Dst.IsValid() {
		return Path{}, errors.New("paths: trace: no target address")
	}
	dst := t.Dst.Unmap()
	path := Path{Dst: dst, Method: p.opts.Method}
	if p.opts.Method == MethodTCP {
		if t.Port == 0 {
			return path, fmt.Errorf("paths: trace %s: a TCP probe needs the flow's destination port", dst)
		}
		path.Port = t.Port
	} else if p.opts.Method == MethodUDP {
		path.Port = p.opts.Port
	}
	var sums []time.Duration
	for i := range p.opts.FlowIDs {
		id := uint16(0)
		if t.SrcPort != 0 {
			id = t.SrcPort + uint16(i)
		}
		var s flowProbe
		var err error
		switch p.opts.Method {
		case MethodICMP:
			s, err = openICMPProbe(t, id)
		case MethodTCP:
			s, err = openTCPProbe(t, id)
		default:
			s, err = openProbeSocket(t, id, p.opts.Port)
		}
		if err != nil {
			return path, fmt.Errorf("paths: trace %s: %w", dst, err)
		}
		path.SrcPorts = append(path.SrcPorts, s.flowID())
		err = p.traceFlow(ctx, s, dst, &path, &sums)
		s.Close()
		if err != nil {
			return path, fmt.Errorf("paths: trace %s: %w", dst, err)
		}
	}
	for i := range path.Hops {
		if h := &path.Hops[i]; h.Received > 0 {
			h.RTTMean = sums[i] / time.Duration(h.Received)
		}
	}
	return path, nil
}

// traceFlow probes with one flow identifier, adding to path's hops and
// to sums, the RTT sums of each hop.
func (p *Prober) traceFlow(ctx context.Context, s flowProbe, dst netip.Addr, path *Path, sums *[]time.Duration) error {
	unreachable := uint8(icmpUnreachable)
	if !dst.Is4() {
		unreachable = icmp6Unreachable
	}
	for ttl := 1; ttl <= p.opts.MaxTTL; ttl++ {
		if len(path.Hops) < ttl {
			path.Hops = append(path.Hops, Hop{TTL: ttl})
			*sums = append(*sums, 0)
		}
		hop := &path.Hops[ttl-1]
		final := false
		for range p.opts.ProbesPerHop {
			if err := p.bucket.wait(ctx); err != nil {
				return err
			}
			sent := time.Now()
			seq, err := s.send(ttl)
			if err != nil {
				return err
			}
			hop.Sent++
			a, ok, err := s.await(ctx, seq, sent.Add(p.opts.Timeout))
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			rtt := a.at.Sub(sent)
			if hop.Received == 0 || rtt < hop.RTTMin {
				hop.RTTMin = rtt
			}
			hop.Received++
			(*sums)[ttl-1] += rtt
			hop.add(a.from)
			hop.ICMPType, hop.ICMPCode, hop.TCPFlags = a.typ, a.code, a.tcpFlags
			if a.from == dst {
				path.Reached = true
			}
			// The target, or a router that cannot forward: no further
			// hop answers.
			final = final || a.from == dst || (a.tcpFlags == 0 && a.typ == unreachable)
		}
		if final {
			return nil
		}
	}
	return nil
}
