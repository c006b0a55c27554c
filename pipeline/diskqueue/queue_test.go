package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Path = dir
	c.MaxSize = 1 << 20
	c.SegmentSize = 64 << 10
	c.ReadAhead = 4 << 10
	return c
}

func open(t *testing.T, c Config) (*Queue, *pipeline.Metrics) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	m := pipeline.NewMetrics()
	q, err := Open(c, Settings{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Release() })
	return q, m
}

// event i has a ~500 byte body so that tests span several segments.
func event(i int) pipeline.Event {
	// Fixed widths: every record has the same length.
	body := fmt.Sprintf(`"n":%06d,"pad":"%0480d"`, i, i)
	return pipeline.Event{
		Timestamp: time.Unix(1700000000, int64(i)).UTC(),
		Body:      []byte(body), Dataset: "fleutan.flows", Series: fmt.Sprintf("s%06d", i),
		ID: fmt.Sprintf("id-%06d", i),
	}
}

func push(t *testing.T, q *Queue, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := q.Push(context.Background(), event(i)); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
}

// drain reads until nothing is left, acking when ack is set, and returns
// the ids seen.
func drain(t *testing.T, q *Queue, ack bool) []string {
	t.Helper()
	var ids []string
	for q.Len() > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := q.Get(ctx, 100)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Events {
			ids = append(ids, e.ID)
		}
		if ack {
			b.Done()
		}
	}
	return ids
}

func wantIDs(from, to int, skip ...int) []string {
	var out []string
next:
	for i := from; i < to; i++ {
		for _, s := range skip {
			if s == i {
				continue next
			}
		}
		out = append(out, fmt.Sprintf("id-%06d", i))
	}
	return out
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %d ids, want %d\ngot:  %v\nwant: %v", len(got), len(want), got, want)
	}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segExt))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func TestRecordsRoundTripAndAckedSegmentsAreDeleted(t *testing.T) {
	dir := t.TempDir()
	q, _ := open(t, testConfig(dir))
	push(t, q, 0, 500) // ~260 KB: five segments
	if n := len(segFiles(t, dir)); n < 4 {
		t.Fatalf("%d segment files, want several", n)
	}
	b, err := q.Get(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	e, want := b.Events[0], event(0)
	if !e.Timestamp.Equal(want.Timestamp) || string(e.Body) != string(want.Body) || e.Dataset != want.Dataset ||
		e.Series != want.Series || e.ID != want.ID {
		t.Fatalf("decoded %+v, want %+v", e, want)
	}
	b.Done()
	equal(t, drain(t, q, true), wantIDs(1, 500))
	if r := q.Records(); r != 0 {
		t.Fatalf("%d records unacked after acking all", r)
	}
	// Only the writer's segment is left.
	if n := len(segFiles(t, dir)); n != 1 {
		t.Fatalf("%d segment files after acking all, want 1", n)
	}
}

func TestRestartDeliversUnackedRecordsFirst(t *testing.T) {
	dir := t.TempDir()
	c := testConfig(dir)
	q, _ := open(t, c)
	push(t, q, 0, 300)
	// Ack the first 200 only; the rest are in flight at the "crash".
	got := 0
	for got < 200 {
		b, err := q.Get(context.Background(), 200-got)
		if err != nil {
			t.Fatal(err)
		}
		got += len(b.Events)
		b.Done()
	}
	if _, err := q.Get(context.Background(), 50); err != nil {
		t.Fatal(err)
	}
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	q2, m := open(t, c)
	push(t, q2, 300, 310)
	ids := drain(t, q2, true)
	// Records of a partly acked segment come again (their ids make the
	// replay invisible in Elasticsearch); every unacked one must.
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	for _, id := range wantIDs(200, 310) {
		if !seen[id] {
			t.Fatalf("%s not delivered after restart", id)
		}
	}
	if len(ids) > 310-200+130 { // at most one 64 KiB segment (~125 records) again
		t.Fatalf("%d records delivered again, more than a segment's worth", len(ids))
	}
	if q2.Sequence() != 310 {
		t.Fatalf("sequence %d, want 310", q2.Sequence())
	}
	if v, _ := m.Tree().GetValue(MetricCorruptRegions); v != int64(0) {
		t.Fatalf("corruption counted on a clean restart: %v", v)
	}
}

func TestFullyAckedQueueKeepsSequenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	c := testConfig(dir)
	q, _ := open(t, c)
	push(t, q, 0, 10)
	drain(t, q, true)
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	q2, _ := open(t, c)
	if q2.Len() != 0 || q2.Sequence() != 10 {
		t.Fatalf("after restart: %d unread, sequence %d; want 0, 10", q2.Len(), q2.Sequence())
	}
}

// TestDamagedSegmentsAreSkippedAndCounted flips a byte inside one record,
// zeroes a range across two records, and tears the last record: every
// intact record is delivered and the damage is counted.
func TestDamagedSegmentsAreSkippedAndCounted(t *testing.T) {
	dir := t.TempDir()
	c := testConfig(dir)
	q, _ := open(t, c)
	push(t, q, 0, 300)
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, dir)
	recLen := int64(len(mustRecord(t, event(0))))
	// Records are equally long here, so record k of a file is at k*recLen.
	first := mustRecords(t, files[0])
	flip(t, files[0], 10*recLen+100) // record 10
	zero(t, files[1], 3*recLen+20, recLen)
	last := files[len(files)-1]
	lastFirst := lastSeq(t, last, mustRecords(t, last))
	st, _ := os.Stat(last)
	if err := os.Truncate(last, st.Size()-recLen/2); err != nil {
		t.Fatal(err)
	}
	seg1First := first

	q2, m := open(t, c)
	ids := drain(t, q2, true)
	equal(t, ids, wantIDs(0, 300, 10, seg1First+3, seg1First+4, lastFirst))
	tree := m.Tree()
	if v, _ := tree.GetValue(MetricCorruptRegions); v != int64(3) {
		t.Fatalf("corrupted regions = %v, want 3", v)
	}
	if v, _ := tree.GetValue(MetricCorruptBytes); v.(int64) < recLen {
		t.Fatalf("corrupted bytes = %v", v)
	}
}

func mustRecord(t *testing.T, e pipeline.Event) []byte {
	b, err := appendRecord(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustRecords is the number of intact records in a file.
func mustRecords(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return scanSegment(b).Records
}

// lastSeq is the sequence number of the last record of a segment file.
func lastSeq(t *testing.T, path string, n int) int {
	var first int
	if _, err := fmt.Sscanf(filepath.Base(path), "%d", &first); err != nil {
		t.Fatal(err)
	}
	return first + n - 1
}

func flip(t *testing.T, path string, off int64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func zero(t *testing.T, path string, off, n int64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}

func TestFullQueueBlocksPushUntilRecordsAreAcked(t *testing.T) {
	dir := t.TempDir()
	q, _ := open(t, testConfig(dir))
	// Push until a push blocks: the output (this test) takes nothing.
	n := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := q.Push(ctx, event(n))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	recLen := len(mustRecord(t, event(0)))
	if want := (1 << 20) / recLen; n < want-1 || n > want {
		t.Fatalf("push blocked after %d records, want %d (max_size / record size)", n, want)
	}
	q.mu.Lock()
	bytes := q.bytes
	q.mu.Unlock()
	if bytes > 1<<20 {
		t.Fatalf("%d bytes on disk, above max_size", bytes)
	}
	// Acking one segment's records lets the blocked producer go on.
	pushed := make(chan error, 1)
	go func() { pushed <- q.Push(context.Background(), event(n)) }()
	select {
	case err := <-pushed:
		t.Fatalf("push returned %v while the queue is full", err)
	case <-time.After(100 * time.Millisecond):
	}
	b, err := q.Get(context.Background(), 200)
	if err != nil {
		t.Fatal(err)
	}
	b.Done()
	select {
	case err := <-pushed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("push still blocked after a segment was acked")
	}
}

func TestFullQueueDropsOldestWhenConfigured(t *testing.T) {
	dir := t.TempDir()
	c := testConfig(dir)
	c.OnFull = OnFullDropOldest
	q, m := open(t, c)
	const total = 5000 // ~2.6 MB through a 1 MiB queue
	push(t, q, 0, total)
	ids := drain(t, q, true)
	dropped, _ := m.Tree().GetValue(MetricDropped)
	if dropped.(int64) == 0 || int64(len(ids))+dropped.(int64) != total {
		t.Fatalf("delivered %d + dropped %v != pushed %d", len(ids), dropped, total)
	}
	// The newest records are the ones kept.
	if ids[len(ids)-1] != fmt.Sprintf("id-%06d", total-1) {
		t.Fatalf("last delivered %s", ids[len(ids)-1])
	}
}

func TestGetAfterCloseDrainsThenReportsDrained(t *testing.T) {
	q, _ := open(t, testConfig(t.TempDir()))
	push(t, q, 0, 3)
	q.Close()
	if err := q.Push(context.Background(), event(9)); !errors.Is(err, pipeline.ErrQueueClosed) {
		t.Fatalf("push after close: %v", err)
	}
	b, err := q.Get(context.Background(), 10)
	if err != nil || len(b.Events) != 3 {
		t.Fatalf("get after close: %d events, %v", len(b.Events), err)
	}
	if _, err := q.Get(context.Background(), 10); !errors.Is(err, pipeline.ErrQueueDrained) {
		t.Fatalf("get on a closed empty queue: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"segment over half", func(c *Config) { c.SegmentSize = c.MaxSize }, "segment_size"},
		{"small max", func(c *Config) { c.MaxSize = 1000 }, "max_size"},
		{"on_full", func(c *Config) { c.OnFull = "explode" }, "on_full"},
		{"flush.events", func(c *Config) { c.Flush.Events = 0 }, "flush.events"},
		{"flush.timeout", func(c *Config) { c.Flush.Timeout = config.Duration(-1) }, "flush.timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestRecordMetadataForms: the id alone, the id with other metadata (kept
// as JSON with "_id", the form records had before Event.ID), and none.
func TestRecordMetadataForms(t *testing.T) {
	ts := time.Unix(1700000000, 5)
	for _, e := range []pipeline.Event{
		{Timestamp: ts, ID: "only-id", Body: []byte(`"a":1`)},
		{Timestamp: ts, ID: "with-meta", Meta: pipeline.M{"pipeline": "p1"}, Body: []byte(`"a":1`)},
		{Timestamp: ts, Meta: pipeline.M{"pipeline": "p1"}, Body: []byte(`"a":1`)},
		{Timestamp: ts, Body: []byte(`"a":1`)},
	} {
		rec, err := appendRecord(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEvent(rec[headerLen:])
		if err != nil {
			t.Fatalf("%s: %v", e.ID, err)
		}
		if got.ID != e.ID || !reflect.DeepEqual(got.Meta, e.Meta) || string(got.Body) != string(e.Body) {
			t.Errorf("got id %q meta %v body %s, want %q %v %s", got.ID, got.Meta, got.Body, e.ID, e.Meta, e.Body)
		}
	}
}
