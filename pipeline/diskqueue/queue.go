package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// Settings is what the agent provides.
type Settings struct {
	Logger  *slog.Logger
	Metrics *pipeline.Metrics
}

// Metric names on /stats (under pipeline.queue.disk).
const (
	MetricBytes          = "pipeline.queue.disk.bytes"
	MetricRecords        = "pipeline.queue.disk.records"
	MetricOldestAgeMS    = "pipeline.queue.disk.oldest_age_ms"
	MetricSequence       = "pipeline.queue.disk.sequence"
	MetricCorruptRegions = "pipeline.queue.disk.corrupted.regions"
	MetricCorruptBytes   = "pipeline.queue.disk.corrupted.bytes"
	MetricDropped        = "pipeline.queue.disk.dropped"
)

const segExt = ".seg"

// segment is one file, named after the sequence number of its first
// record; records are numbered across runs, so the sequence the queue has
// reached is the number of records ever written to this directory.
type segment struct {
	first   uint64
	path    string
	size    int64 // bytes of intact records
	records int
	read    int // records handed to Get (or skipped as undecodable)
	acked   int
	sealed  bool // the writer has moved on
	deleted bool
	bad     []span // damaged ranges found at open
	firstTS time.Time
}

// Queue is the disk queue. It implements pipeline.Queue.
type Queue struct {
	cfg Config
	log *slog.Logger
	dir string

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced when readers or writers may go on
	waiting  int
	segs     []*segment // oldest first; the last is the writer's
	w        *os.File
	wbuf     []byte
	nextSeq  uint64
	bytes    int64
	unsynced int
	closed   bool
	released bool

	rmu  sync.Mutex // one reader at a time; guards the fields below
	rseg *segment
	rf   *os.File
	roff int64
	buf  []byte
	bufO int64

	corruptRegions, corruptBytes, dropped *atomic.Int64
	lastDropLog                           time.Time

	stopSync context.CancelFunc
	syncDone chan struct{}
}

// Open opens or creates the queue directory. Records of a previous run are
// delivered first. A damaged segment never stops the agent: damaged ranges
// are skipped, a torn tail is cut, and both are counted and logged once.
func Open(c Config, s Settings) (*Queue, error) {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Metrics == nil {
		s.Metrics = pipeline.NewMetrics()
	}
	q := &Queue{
		cfg: c, log: s.Logger, dir: c.Path,
		changed:        make(chan struct{}),
		corruptRegions: s.Metrics.Counter(MetricCorruptRegions),
		corruptBytes:   s.Metrics.Counter(MetricCorruptBytes),
		dropped:        s.Metrics.Counter(MetricDropped),
	}
	if err := os.MkdirAll(q.dir, 0o750); err != nil {
		return nil, fmt.Errorf("diskqueue: create %s: %w", q.dir, err)
	}
	if err := q.load(); err != nil {
		return nil, err
	}
	if err := q.newSegment(); err != nil {
		return nil, err
	}
	s.Metrics.Gauge(MetricBytes, func() int64 { q.mu.Lock(); defer q.mu.Unlock(); return q.bytes })
	s.Metrics.Gauge(MetricRecords, func() int64 { return int64(q.Records()) })
	s.Metrics.Gauge(MetricOldestAgeMS, func() int64 { return q.oldestAge().Milliseconds() })
	s.Metrics.Gauge(MetricSequence, func() int64 { return int64(q.Sequence()) })
	ctx, cancel := context.WithCancel(context.Background())
	q.stopSync, q.syncDone = cancel, make(chan struct{})
	go q.syncLoop(ctx)
	return q, nil
}

// load scans the segments left by earlier runs.
func (q *Queue) load() error {
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return fmt.Errorf("diskqueue: list %s: %w", q.dir, err)
	}
	var segs []*segment
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, segExt) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segExt), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, &segment{first: first, path: filepath.Join(q.dir, name), sealed: true})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	var regions, badBytes int64
	for i, sg := range segs {
		b, err := os.ReadFile(sg.path)
		if err != nil {
			return fmt.Errorf("diskqueue: read %s: %w", sg.path, err)
		}
		r := scanSegment(b)
		sg.records, sg.bad, sg.size, sg.firstTS = r.Records, r.Bad, r.End, r.FirstTS
		for _, sp := range r.Bad {
			regions++
			badBytes += sp.End - sp.Off
		}
		if r.End < int64(len(b)) {
			regions++
			badBytes += int64(len(b)) - r.End
			if err := os.Truncate(sg.path, r.End); err != nil {
				return fmt.Errorf("diskqueue: cut damaged tail of %s: %w", sg.path, err)
			}
		}
		if i == len(segs)-1 {
			q.nextSeq = sg.first + uint64(sg.records)
		}
	}
	for _, sg := range segs {
		if sg.records == 0 {
			if err := os.Remove(sg.path); err != nil {
				return fmt.Errorf("diskqueue: remove empty %s: %w", sg.path, err)
			}
			continue
		}
		q.segs = append(q.segs, sg)
		q.bytes += sg.size
	}
	q.corruptRegions.Add(regions)
	q.corruptBytes.Add(badBytes)
	if regions > 0 {
		q.log.Warn("disk queue: damaged records skipped; intact records are delivered",
			"path", q.dir, "regions", regions, "bytes", badBytes)
	}
	if n := q.records(); n > 0 {
		q.log.Info("disk queue: delivering records of the previous run first", "path", q.dir,
			"records", n, "segments", len(q.segs))
	}
	return nil
}

// newSegment seals the writer's segment and starts the next; q.mu held or
// not yet shared.
func (q *Queue) newSegment() error {
	if q.w != nil {
		if err := q.w.Sync(); err != nil {
			q.log.Warn("disk queue: fsync failed", "error", err)
		}
		_ = q.w.Close()
		q.w = nil
		q.segs[len(q.segs)-1].sealed = true
		q.maybeDelete(q.segs[len(q.segs)-1])
	}
	sg := &segment{first: q.nextSeq, path: filepath.Join(q.dir, fmt.Sprintf("%020d%s", q.nextSeq, segExt))}
	f, err := os.OpenFile(sg.path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("diskqueue: create segment: %w", err)
	}
	q.w, q.unsynced = f, 0
	q.segs = append(q.segs, sg)
	return nil
}

// Push appends the event's record to the current segment. The record is in
// the kernel's page cache when Push returns, so it survives the agent being
// killed; fsync follows the flush policy.
func (q *Queue) Push(ctx context.Context, e pipeline.Event) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return pipeline.ErrQueueClosed
	}
	var err error
	q.wbuf, err = appendRecord(q.wbuf[:0], &e)
	if err != nil {
		return err
	}
	n := int64(len(q.wbuf))
	for q.bytes+n > int64(q.cfg.MaxSize) && !q.closed {
		if q.cfg.OnFull == OnFullDropOldest {
			if q.dropOldest() {
				continue
			}
			break // nothing sealed to drop: overshoot by this record
		}
		if err := q.waitLocked(ctx); err != nil {
			return err
		}
	}
	if q.closed {
		return pipeline.ErrQueueClosed
	}
	cur := q.segs[len(q.segs)-1]
	if cur.records > 0 && cur.size+n > int64(q.cfg.SegmentSize) {
		if err := q.newSegment(); err != nil {
			return err
		}
		cur = q.segs[len(q.segs)-1]
	}
	if _, err := q.w.Write(q.wbuf); err != nil {
		// A partial write is cut at the next start, like a torn tail.
		return fmt.Errorf("diskqueue: write %s: %w", cur.path, err)
	}
	if cur.records == 0 {
		cur.firstTS = time.Now()
	}
	cur.size += n
	cur.records++
	q.bytes += n
	q.nextSeq++
	q.unsynced++
	if q.unsynced >= q.cfg.Flush.Events {
		q.syncLocked()
	}
	q.signal()
	if len(q.wbuf) > 1<<20 {
		q.wbuf = nil // do not keep a rare huge buffer
	}
	return nil
}

func (q *Queue) syncLocked() {
	if q.w == nil || q.unsynced == 0 {
		return
	}
	if err := q.w.Sync(); err != nil {
		q.log.Warn("disk queue: fsync failed", "error", err)
	}
	q.unsynced = 0
}

func (q *Queue) syncLoop(ctx context.Context) {
	defer close(q.syncDone)
	d := q.cfg.Flush.Timeout.D()
	if d <= 0 {
		return
	}
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		q.mu.Lock()
		q.syncLocked()
		q.mu.Unlock()
	}
}

// waitLocked releases q.mu until signal or the end of ctx (its error), and
// holds it again on return.
func (q *Queue) waitLocked(ctx context.Context) error {
	ch := q.changed
	q.waiting++
	q.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
	q.mu.Lock()
	q.waiting--
	return ctx.Err()
}

// signal wakes waiting readers and writers; q.mu held.
func (q *Queue) signal() {
	if q.waiting > 0 {
		close(q.changed)
		q.changed = make(chan struct{})
	}
}

// dropOldest deletes the oldest sealed segment, counting its records not
// yet handed out as dropped; q.mu held.
func (q *Queue) dropOldest() bool {
	for _, sg := range q.segs {
		if !sg.sealed || sg.deleted {
			continue
		}
		lost := sg.records - sg.read
		sg.read = sg.records
		q.dropped.Add(int64(lost))
		q.remove(sg)
		if now := time.Now(); now.Sub(q.lastDropLog) >= 10*time.Second {
			q.lastDropLog = now
			q.log.Warn("disk queue full: oldest segment dropped (on_full: drop_oldest)",
				"records", lost, "dropped_total", q.dropped.Load())
		}
		return true
	}
	return false
}

// maybeDelete removes a segment once the writer has moved on and every
// record in it is acked; q.mu held.
func (q *Queue) maybeDelete(sg *segment) {
	if sg.sealed && !sg.deleted && sg.read == sg.records && sg.acked >= sg.read {
		q.remove(sg)
	}
}

func (q *Queue) remove(sg *segment) {
	sg.deleted = true
	if err := os.Remove(sg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		q.log.Warn("disk queue: remove acked segment", "error", err)
	}
	q.bytes -= sg.size
	for i, s := range q.segs {
		if s == sg {
			q.segs = append(q.segs[:i], q.segs[i+1:]...)
			break
		}
	}
	q.signal()
}

// Get returns up to max records, waiting for the first. Records stay on
// disk until the batch's Done.
func (q *Queue) Get(ctx context.Context, max int) (pipeline.QueueBatch, error) {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	for {
		events, refs, err := q.read(max)
		if err != nil {
			return pipeline.QueueBatch{}, err
		}
		if len(events) > 0 {
			return pipeline.QueueBatch{Events: events, Done: func() { q.ack(refs) }}, nil
		}
		q.mu.Lock()
		if q.unreadLocked() > 0 {
			q.mu.Unlock()
			continue
		}
		if q.closed {
			q.mu.Unlock()
			return pipeline.QueueBatch{}, pipeline.ErrQueueDrained
		}
		err = q.waitLocked(ctx)
		q.mu.Unlock()
		if err != nil {
			return pipeline.QueueBatch{}, err
		}
	}
}

type ackRef struct {
	seg *segment
	n   int
}

func (q *Queue) ack(refs []ackRef) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range refs {
		r.seg.acked += r.n
		q.maybeDelete(r.seg)
	}
}

// read decodes up to max records from the reader's position; q.rmu held.
func (q *Queue) read(max int) ([]pipeline.Event, []ackRef, error) {
	var out []pipeline.Event
	var refs []ackRef
	for len(out) < max {
		q.mu.Lock()
		sg := q.rseg
		if sg == nil || sg.deleted {
			sg = q.firstUnreadLocked()
		}
		var size int64
		var sealed bool
		var toRead int
		if sg != nil {
			size, sealed, toRead = sg.size, sg.sealed, sg.records-sg.read
		}
		q.mu.Unlock()
		if sg == nil {
			break
		}
		if sg != q.rseg {
			if err := q.openReader(sg); err != nil {
				return out, refs, err
			}
		}
		if toRead == 0 || q.roff >= size {
			if !sealed {
				break
			}
			q.mu.Lock()
			if sg.read < sg.records {
				// Records the reader could not reach are damage found now.
				q.corruptRegions.Add(1)
				sg.read = sg.records
				sg.acked += 0
			}
			q.maybeDelete(sg)
			q.mu.Unlock()
			q.rseg = nil
			continue
		}
		for _, sp := range sg.bad {
			if q.roff == sp.Off {
				q.roff = sp.End
			}
		}
		p, n, ok := q.frame(size)
		if !ok {
			q.log.Warn("disk queue: damaged record while reading; skipping the rest of the segment", "segment", sg.path, "offset", q.roff)
			q.corruptRegions.Add(1)
			q.corruptBytes.Add(size - q.roff)
			q.mu.Lock()
			q.readSkip(sg, sg.records-sg.read)
			q.mu.Unlock()
			q.roff = size
			continue
		}
		q.roff += int64(n)
		e, err := decodeEvent(p)
		q.mu.Lock()
		if err != nil {
			q.corruptRegions.Add(1)
			q.corruptBytes.Add(int64(n))
			q.readSkip(sg, 1)
		} else {
			sg.read++
			out = append(out, e)
			if len(refs) > 0 && refs[len(refs)-1].seg == sg {
				refs[len(refs)-1].n++
			} else {
				refs = append(refs, ackRef{sg, 1})
			}
		}
		q.mu.Unlock()
	}
	return out, refs, nil
}

// readSkip counts records that are never handed out as read and acked.
func (q *Queue) readSkip(sg *segment, n int) {
	sg.read += n
	sg.acked += n
	q.maybeDelete(sg)
}

func (q *Queue) firstUnreadLocked() *segment {
	for _, sg := range q.segs {
		if sg.read < sg.records || !sg.sealed {
			return sg
		}
	}
	return nil
}

func (q *Queue) unreadLocked() int {
	n := 0
	for _, sg := range q.segs {
		n += sg.records - sg.read
	}
	return n
}

func (q *Queue) openReader(sg *segment) error {
	if q.rf != nil {
		_ = q.rf.Close()
		q.rf = nil
	}
	f, err := os.Open(sg.path)
	if err != nil {
		return fmt.Errorf("diskqueue: open %s: %w", sg.path, err)
	}
	q.rf, q.rseg, q.roff, q.buf, q.bufO = f, sg, 0, q.buf[:0], 0
	return nil
}

// frame returns the intact frame at q.roff, reading ahead from the file
// as needed; size is the end of intact data; q.rmu held.
func (q *Queue) frame(size int64) ([]byte, int, bool) {
	hdr, ok := q.window(headerLen, size)
	if !ok {
		return nil, 0, false
	}
	l := int64(uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16 | uint32(hdr[3])<<24)
	b, ok := q.window(headerLen+l, size)
	if !ok {
		return nil, 0, false
	}
	return frameAt(b)
}

// window returns n bytes at q.roff.
func (q *Queue) window(n, size int64) ([]byte, bool) {
	if q.roff+n > size {
		return nil, false
	}
	if q.roff >= q.bufO && q.roff+n <= q.bufO+int64(len(q.buf)) {
		return q.buf[q.roff-q.bufO : q.roff-q.bufO+n], true
	}
	want := max(n, int64(q.cfg.ReadAhead))
	want = min(want, size-q.roff)
	if int64(cap(q.buf)) < want {
		q.buf = make([]byte, want)
	}
	q.buf = q.buf[:want]
	m, err := q.rf.ReadAt(q.buf, q.roff)
	q.buf, q.bufO = q.buf[:m], q.roff
	if int64(m) < n {
		_ = err
		return nil, false
	}
	return q.buf[:n], true
}

// Close stops Push; Get drains what is on disk, then reports
// pipeline.ErrQueueDrained.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.waiting++ // make signal wake every waiter
	q.signal()
	q.waiting--
}

// Len is the number of records on disk not yet handed to Get.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unreadLocked()
}

// Records is the number of records on disk not yet acked.
func (q *Queue) Records() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.records()
}

func (q *Queue) records() int {
	n := 0
	for _, sg := range q.segs {
		n += sg.records - sg.acked
	}
	return n
}

// Sequence is the number of records ever written to this queue directory,
// across runs (records cut as damaged are not counted).
func (q *Queue) Sequence() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.nextSeq
}

func (q *Queue) oldestAge() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, sg := range q.segs {
		if sg.records > sg.acked && !sg.firstTS.IsZero() {
			return time.Since(sg.firstTS)
		}
	}
	return 0
}

// Release syncs and closes the files; call it after the pipeline has
// stopped. Unacked records stay for the next run. When everything is acked
// the last segment is replaced by an empty one that keeps the sequence.
func (q *Queue) Release() error {
	q.Close()
	q.stopSync()
	<-q.syncDone
	q.rmu.Lock()
	defer q.rmu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.released {
		return nil
	}
	q.released = true
	if q.rf != nil {
		_ = q.rf.Close()
		q.rf = nil
	}
	var err error
	if q.w != nil {
		if e := q.w.Sync(); e != nil {
			err = fmt.Errorf("diskqueue: fsync: %w", e)
		}
		_ = q.w.Close()
		q.w = nil
	}
	if len(q.segs) == 1 && q.records() == 0 && q.segs[0].records > 0 {
		sg := q.segs[0]
		anchor := filepath.Join(q.dir, fmt.Sprintf("%020d%s", q.nextSeq, segExt))
		if e := os.WriteFile(anchor, nil, 0o600); e == nil {
			_ = os.Remove(sg.path)
		}
	}
	q.log.Info("disk queue closed", "path", q.dir, "records", q.records(), "bytes", q.bytes, "sequence", q.nextSeq)
	return err
}
