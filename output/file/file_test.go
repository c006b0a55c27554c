package file

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/output/codec/codectest"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

func raw(t testing.TB, text string) config.Raw {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	if len(doc.Content) == 0 {
		return config.NewRaw(nil, "fleutanbeat.yml", "output.file")
	}
	return config.NewRaw(doc.Content[0], "fleutanbeat.yml", "output.file")
}

// open builds the output in a fresh directory with the given extra YAML.
func open(t testing.TB, dir, extra string) pipeline.Output {
	t.Helper()
	g, err := New(raw(t, "path: "+dir+"\n"+extra), output.Settings{Beat: "fleutanbeat", Version: "0.1.0"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if len(g.Clients) != 1 || g.BatchSize != 2048 {
		t.Fatalf("group: %d clients, batch size %d; want 1, 2048", len(g.Clients), g.BatchSize)
	}
	t.Cleanup(func() { g.Clients[0].Close() })
	return g.Clients[0]
}

var t0 = time.Date(2026, 11, 27, 4, 5, 34, 0, time.UTC)

// events returns n small events numbered from first, each with pad bytes
// of padding.
func events(first, n, pad int) []pipeline.Event {
	out := make([]pipeline.Event, n)
	for i := range out {
		out[i] = pipeline.Event{
			Timestamp: t0,
			Fields:    pipeline.M{"seq": first + i, "pad": strings.Repeat("x", pad)},
			ID:        strconv.Itoa(first + i),
		}
	}
	return out
}

func publish(t testing.TB, out pipeline.Output, evs []pipeline.Event) {
	t.Helper()
	if err := out.Publish(context.Background(), pipeline.NewBatch(evs)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// files lists the output files oldest first (highest number first, the
// active file last).
func files(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	num := func(name string) int {
		s := strings.TrimPrefix(name, "fleutanbeat.ndjson")
		if s == "" {
			return 0
		}
		n, err := strconv.Atoi(strings.TrimPrefix(s, "."))
		if err != nil {
			t.Fatalf("unexpected file %q", name)
		}
		return n
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.SortFunc(names, func(a, b string) int { return num(b) - num(a) })
	return names
}

// seqs reads the seq field of every line of the files, in order.
func seqs(t testing.TB, dir string, names []string) []int {
	t.Helper()
	var out []int
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var doc struct {
				Seq  int `json:"seq"`
				Meta struct {
					ID   string `json:"_id"`
					Beat string `json:"beat"`
				} `json:"@metadata"`
			}
			if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
				t.Fatalf("%s: bad line %q: %v", name, sc.Text(), err)
			}
			if doc.Meta.ID != strconv.Itoa(doc.Seq) || doc.Meta.Beat != "fleutanbeat" {
				t.Fatalf("%s: bad @metadata in %q", name, sc.Text())
			}
			out = append(out, doc.Seq)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

var testOpts = codec.Options{Metadata: true, Beat: "fleutanbeat", Type: "_doc", Version: "0.1.0"}

func lineLen(e pipeline.Event) int { return len(codec.AppendEvent(nil, &e, testOpts)) + 1 }

// packedFiles is how many files the events fill when each file takes
// events while they fit in limit bytes, and an oversized one alone.
func packedFiles(evs []pipeline.Event, limit int) int {
	n, size := 1, 0
	for _, e := range evs {
		l := lineLen(e)
		if size > 0 && size+l > limit {
			n, size = n+1, 0
		}
		size += l
	}
	return n
}

func seqRange(first, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = first + i
	}
	return out
}

func TestEveryEventOnceInOrderAcrossRotations(t *testing.T) {
	dir := t.TempDir()
	out := open(t, dir, "rotate_every_kb: 10\nnumber_of_files: 1024\n")
	const total = 20000
	for first := 0; first < total; first += 2000 {
		publish(t, out, events(first, 2000, 20))
	}
	names := files(t, dir)
	evs := events(0, total, 20)
	if want := packedFiles(evs, 10240); len(names) != want {
		t.Errorf("got %d files, want %d", len(names), want)
	}
	line := lineLen(evs[total-1]) // the longest: five-digit seq and _id
	for _, name := range names[:len(names)-1] {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		// Full files: another line would not have fitted.
		if st.Size() > 10240 || st.Size()+int64(line) <= 10240 {
			t.Errorf("%s: size %d, want in (%d, 10240]", name, st.Size(), 10240-line)
		}
	}
	if got := seqs(t, dir, names); !slices.Equal(got, seqRange(0, total)) {
		t.Errorf("events across files are not 0..%d once each in order (got %d events)", total-1, len(got))
	}
}

func TestRotationKeepsNumberOfFiles(t *testing.T) {
	for _, n := range []int{2, 3, 7} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			dir := t.TempDir()
			out := open(t, dir, fmt.Sprintf("rotate_every_kb: 10\nnumber_of_files: %d\n", n))
			for first := 0; first < 5000; first += 500 {
				publish(t, out, events(first, 500, 100))
			}
			names := files(t, dir)
			want := []string{"fleutanbeat.ndjson"}
			for i := 1; i < n; i++ {
				want = append([]string{"fleutanbeat.ndjson." + strconv.Itoa(i)}, want...)
			}
			if !slices.Equal(names, want) {
				t.Fatalf("files %v, want %v", names, want)
			}
			// The kept files hold the newest events without a gap.
			got := seqs(t, dir, names)
			if len(got) == 0 || got[len(got)-1] != 4999 || !slices.Equal(got, seqRange(got[0], len(got))) {
				t.Errorf("kept events are not a contiguous tail ending at 4999: %d events from %v", len(got), got[:1])
			}
		})
	}
}

func TestOversizedEventGoesAloneIntoAFile(t *testing.T) {
	dir := t.TempDir()
	out := open(t, dir, "rotate_every_kb: 10\nnumber_of_files: 10\n")
	evs := events(0, 3, 10)
	evs = append(evs, events(3, 1, 30000)...)
	evs = append(evs, events(4, 2, 10)...)
	publish(t, out, evs)
	names := files(t, dir)
	if len(names) != 3 {
		t.Fatalf("files %v, want 3", names)
	}
	for i, want := range [][]int{{0, 1, 2}, {3}, {4, 5}} {
		if got := seqs(t, dir, names[i:i+1]); !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", names[i], got, want)
		}
	}
}

func TestRestartAppendsOrRotates(t *testing.T) {
	cases := []struct {
		name  string
		extra string
		want  [][]int // per file, oldest first
	}{
		{"appends by default", "", [][]int{{0, 1, 2, 3}}},
		{"rotate_on_startup", "rotate_on_startup: true\n", [][]int{{0, 1}, {2, 3}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			first := open(t, dir, c.extra)
			publish(t, first, events(0, 2, 5))
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			second := open(t, dir, c.extra)
			publish(t, second, events(2, 2, 5))
			names := files(t, dir)
			if len(names) != len(c.want) {
				t.Fatalf("files %v, want %d", names, len(c.want))
			}
			for i, want := range c.want {
				if got := seqs(t, dir, names[i:i+1]); !slices.Equal(got, want) {
					t.Errorf("%s holds %v, want %v", names[i], got, want)
				}
			}
		})
	}
}

func TestOpenFailsInUnwritableDirectory(t *testing.T) {
	// procfs refuses new files even to root, unlike a chmod 0500 directory.
	_, err := New(raw(t, "path: /proc/self\n"), output.Settings{})
	if err == nil || !strings.HasPrefix(err.Error(), "file output: open: open /proc/self/fleutanbeat.ndjson: ") {
		t.Fatalf("got %v, want an open error", err)
	}
	if os.Geteuid() != 0 {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		_, err := New(raw(t, "path: "+dir+"\n"), output.Settings{})
		if !errors.Is(err, os.ErrPermission) {
			t.Errorf("read-only directory: got %v, want permission denied", err)
		}
	}
}

func TestWriteErrorIsReturnedAndFileReopened(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleutanbeat.ndjson")
	// Writes to /dev/full fail with ENOSPC, as on a full disk.
	if err := os.Symlink("/dev/full", path); err != nil {
		t.Fatal(err)
	}
	out := open(t, dir, "")
	b := pipeline.NewBatch(events(0, 10, 5))
	err := out.Publish(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("got %v, want ENOSPC", err)
	}
	for i := range b.Len() {
		if st, _ := b.Status(i); st != pipeline.Pending {
			t.Fatalf("event %d: status %v, want pending (retried)", i, st)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// The retry reopens the path, now a new regular file.
	publish(t, out, b.Events)
	if got := seqs(t, dir, []string{"fleutanbeat.ndjson"}); !slices.Equal(got, seqRange(0, 10)) {
		t.Errorf("file holds %v, want 0..9", got)
	}
}

func TestRotationFailureAcksFlushedEventsOnly(t *testing.T) {
	dir := t.TempDir()
	out := open(t, dir, "rotate_every_kb: 10\nnumber_of_files: 2\n")
	// A non-empty directory where the rotated file must go makes rename(2)
	// fail (EISDIR / ENOTEMPTY) even for root.
	blocker := filepath.Join(dir, "fleutanbeat.ndjson.1")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o750); err != nil {
		t.Fatal(err)
	}
	evs := events(0, 60, 100) // two files' worth: none is rotated away
	fit := 10240 / lineLen(evs[59])
	b := pipeline.NewBatch(evs)
	err := out.Publish(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "file output: rotate: rename") {
		t.Fatalf("got %v, want a rotate error", err)
	}
	var retry []pipeline.Event
	acked := 0
	for i := range b.Len() {
		switch st, _ := b.Status(i); st {
		case pipeline.Acked:
			if len(retry) > 0 {
				t.Fatalf("event %d acked after a pending one", i)
			}
			acked++
		case pipeline.Pending:
			retry = append(retry, evs[i])
		default:
			t.Fatalf("event %d: status %v", i, st)
		}
	}
	if acked != fit {
		t.Errorf("acked %d events, want the %d of the full file", acked, fit)
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	publish(t, out, retry)
	if got := seqs(t, dir, files(t, dir)); !slices.Equal(got, seqRange(0, 60)) {
		t.Errorf("after the retry the files hold %v, want 0..59 once each", got)
	}
}

func TestConcurrentPublishKeepsBatchesWhole(t *testing.T) {
	dir := t.TempDir()
	out := open(t, dir, "rotate_every_kb: 64\nnumber_of_files: 1024\nfsync: true\n")
	const workers, batches, size = 4, 25, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				first := (w*batches + b) * size
				if err := out.Publish(context.Background(), pipeline.NewBatch(events(first, size, 30))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got := seqs(t, dir, files(t, dir))
	if len(got) != workers*batches*size {
		t.Fatalf("got %d events, want %d", len(got), workers*batches*size)
	}
	for i := 0; i < len(got); i += size {
		if got[i]%size != 0 || !slices.Equal(got[i:i+size], seqRange(got[i], size)) {
			t.Fatalf("batch at line %d interleaved: %v", i, got[i:i+size])
		}
	}
	sorted := slices.Sorted(slices.Values(got))
	if !slices.Equal(sorted, seqRange(0, len(got))) {
		t.Errorf("events missing or duplicated")
	}
}

func TestCloseIsIdempotentAndStopsPublish(t *testing.T) {
	dir := t.TempDir()
	out := open(t, dir, "")
	publish(t, out, events(0, 1, 1))
	for range 2 {
		if err := out.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if err := out.Publish(context.Background(), pipeline.NewBatch(events(1, 1, 1))); !errors.Is(err, errClosed) {
		t.Errorf("Publish after Close: got %v, want %v", err, errClosed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out2 := open(t, dir, "")
	if err := out2.Publish(ctx, pipeline.NewBatch(events(1, 1, 1))); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context: got %v", err)
	}
	if got := seqs(t, dir, files(t, dir)); !slices.Equal(got, []int{0}) {
		t.Errorf("file holds %v, want [0]", got)
	}
}

func TestPathDefaultsToDataPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "sub")
	g, err := New(raw(t, "filename: out.ndjson\n"), output.Settings{DataPath: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Clients[0].Close()
	if _, err := os.Stat(filepath.Join(dir, "out.ndjson")); err != nil {
		t.Errorf("file not created under path.data: %v", err)
	}
}

func BenchmarkFilePublish(b *testing.B) {
	dir := b.TempDir()
	g, err := New(raw(b, "path: "+dir+"\nrotate_every_kb: 1048576\n"), output.Settings{Beat: "fleutanbeat", Version: "0.1.0"})
	if err != nil {
		b.Fatal(err)
	}
	out := g.Clients[0]
	defer out.Close()
	evs := make([]pipeline.Event, BatchSize)
	for i := range evs {
		evs[i] = codectest.FlowEvent(i)
	}
	batch := pipeline.NewBatch(evs)
	publish(b, out, evs) // warm the line buffer
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		if err := out.Publish(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	n := float64(b.N) * BatchSize
	b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/event")
}
