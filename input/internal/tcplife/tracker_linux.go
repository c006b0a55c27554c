package tcplife

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Tracker owns the loaded program, its maps and the goroutine that empties
// the ring buffer into memory as records arrive, so the kernel's ring never
// has to hold a whole period.
type Tracker struct {
	objs    tcplifeObjects
	link    link.Link
	rd      *ringbuf.Reader
	flushed chan struct{}
	done    chan struct{}

	mu         sync.Mutex
	pending    []Conn
	spare      []Conn
	maxPending int
	stats      Stats // PendingFull and BadRecords; the rest is in the drops map
}

// Open loads and attaches the program. Errors wrap ErrNotSupported when
// the kernel lacks what it needs, and say what the kernel refused.
func Open(o Options) (t *Tracker, err error) {
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	spec, err := loadTcplife()
	if err != nil {
		return nil, fmt.Errorf("tcplife: %w", err)
	}
	spec.Maps[tcplifeMapConns].MaxEntries = uint32(o.MaxConnections)
	spec.Maps[tcplifeMapChildren].MaxEntries = uint32(o.MaxConnections)
	t = &Tracker{flushed: make(chan struct{}, 1), done: make(chan struct{}), maxPending: o.MaxPending}
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK (64 KiB by
	// default): Debian's 5.10 refused the listeners map with EPERM. Newer
	// kernels use memory cgroups and this does nothing.
	_ = rlimit.RemoveMemlock()
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("%w: load: verifier: %v%s", ErrNotSupported, ve.Cause, refused(ve.Log))
		}
		return nil, fmt.Errorf("%w: load: %w", ErrNotSupported, err)
	}
	defer func() {
		if err != nil {
			_ = t.closeObjects()
		}
	}()
	t.link, err = link.AttachTracing(link.TracingOptions{Program: t.objs.OnState})
	if err != nil {
		return nil, fmt.Errorf("%w: attach tp_btf/inet_sock_set_state: %w", ErrNotSupported, err)
	}
	t.rd, err = ringbuf.NewReader(t.objs.Closed)
	if err != nil {
		return nil, fmt.Errorf("%w: ring buffer: %w", ErrNotSupported, err)
	}
	go t.read()
	return t, nil
}

// read moves records from the ring into t.pending until Close.
func (t *Tracker) read() {
	defer close(t.done)
	var rec ringbuf.Record
	for {
		err := t.rd.ReadInto(&rec)
		switch {
		case err == nil:
			c, err := ParseRecord(rec.RawSample)
			t.mu.Lock()
			switch {
			case err != nil:
				t.stats.BadRecords++
			case len(t.pending) >= t.maxPending:
				t.stats.PendingFull++
			default:
				t.pending = append(t.pending, c)
			}
			t.mu.Unlock()
		case errors.Is(err, ringbuf.ErrFlushed):
			select {
			case t.flushed <- struct{}{}:
			default:
			}
		case errors.Is(err, os.ErrClosed), errors.Is(err, ringbuf.ErrClosed):
			return
		default:
			// EINTR and the like: the ring is still there.
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Drain returns the connections closed since the previous Drain, up to
// the moment of the call: every record the kernel queued before Drain
// started is in the result. The slice is reused by the Drain after next.
func (t *Tracker) Drain(ctx context.Context) ([]Conn, error) {
	select {
	case <-t.flushed:
	default:
	}
	if err := t.rd.Flush(); err != nil {
		return nil, fmt.Errorf("tcplife: flush ring buffer: %w", err)
	}
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	select {
	case <-t.flushed:
	case <-t.done:
		return nil, fmt.Errorf("tcplife: ring buffer reader stopped")
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, fmt.Errorf("tcplife: ring buffer not drained within 5s")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.pending
	t.pending, t.spare = t.spare[:0], out
	return out, nil
}

// Lookup returns what the program knows of an open connection by its
// socket cookie.
func (t *Tracker) Lookup(cookie uint64) (Owner, bool) {
	var c tcplifeConn
	if err := t.objs.Conns.Lookup(cookie, &c); err != nil {
		return Owner{}, false
	}
	o := Owner{TGID: c.Tgid, Inode: c.Inode, Flags: Flags(c.Flags)}
	if o.Flags&Started != 0 {
		o.StartNs = c.StartNs
	}
	var comm [16]byte
	for i, v := range c.Comm {
		comm[i] = byte(v)
	}
	o.Comm = commString(comm[:])
	return o, true
}

// Stats returns the drop counters since Open.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	s := t.stats
	t.mu.Unlock()
	var vals [2]uint64
	for i := range vals {
		_ = t.objs.Drops.Lookup(uint32(i), &vals[i])
	}
	s.RingFull, s.MapFull = vals[0], vals[1]
	return s
}

// Close detaches the program and frees its maps.
func (t *Tracker) Close() error {
	var errs []error
	if t.rd != nil {
		errs = append(errs, t.rd.Close())
		<-t.done
	}
	errs = append(errs, t.closeObjects())
	return errors.Join(errs...)
}

func (t *Tracker) closeObjects() error {
	var errs []error
	if t.link != nil {
		errs = append(errs, t.link.Close())
		t.link = nil
	}
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}

// Monotonic is CLOCK_MONOTONIC in nanoseconds, the clock of StartNs and
// EndNs (bpf_ktime_get_ns).
func Monotonic() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// WallTime converts a CLOCK_MONOTONIC time of the program to wall-clock
// time.
func WallTime(mono uint64) time.Time {
	now, m := time.Now(), Monotonic()
	return now.Add(-time.Duration(int64(m - mono)))
}

// refused picks what the verifier refused from its log: Linux before 5.12
// has no bpf_get_socket_cookie for tracing programs and says "unknown func
// bpf_get_socket_cookie#46", which is the reason worth a log line; any
// other refusal is its log's last line.
func refused(log []string) string {
	for _, l := range log {
		if strings.Contains(l, "unknown func") {
			return ": " + strings.TrimSpace(l)
		}
	}
	for i := len(log) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(log[i]); l != "" {
			return ": " + l
		}
	}
	return ""
}
