// Package file is output.file: events as newline-delimited JSON in a file
// that rotates by size, as in Beats.
//
// Rotation naming: the active file is <filename>; when the next event would
// take it past rotate_every_kb it becomes <filename>.1, the previous .1
// becomes .2, and so on; number_of_files counts the active file too, so the
// oldest kept is <filename>.<number_of_files-1> and the one before it is
// deleted by being renamed over. An event is never split across files; an
// event larger than the limit goes alone into a file.
package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// BatchSize is the events per Publish. Beats' file output has no
// bulk_max_size; a batch is one buffered write and one flush, so larger
// batches only hold memory longer.
const BatchSize = 2048

const (
	dirMode = 0o750
	// bufSize batches small events into few write(2) calls.
	bufSize = 64 << 10
)

var errClosed = errors.New("file output: closed")

// New builds output.file from its section. It creates the directory and
// opens (or, with rotate_on_startup, rotates) the file now, so a bad path
// fails at start-up rather than at the first batch; with s.CheckOnly it
// creates nothing (the file is opened by the first Publish, if any).
func New(cfg config.Raw, s output.Settings) (output.Group, error) {
	c := DefaultConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return output.Group{}, err
	}
	w, err := newWriter(c, s)
	if err != nil {
		return output.Group{}, err
	}
	return output.Group{Clients: []pipeline.Output{w}, BatchSize: BatchSize}, nil
}

// writer is the single client: file writes are serialised by mu, which
// also makes concurrent Publish calls safe.
type writer struct {
	mu    sync.Mutex
	path  string // active file
	limit int64
	files int
	mode  os.FileMode
	fsync bool
	opts  codec.Options
	log   *slog.Logger

	f *os.File
	w *bufio.Writer
	// size counts bytes written to the file, buffered ones included;
	// durable is the size at the last successful flush (and fsync), where a
	// failed batch is cut back to so that its retry leaves no torn line.
	size, durable int64
	closed        bool
	line          []byte

	// libbeat.output.write.*: bytes made durable in the files, and
	// failed writes, flushes, rotations and opens.
	written, writeErrs *atomic.Int64
}

func newWriter(c Config, s output.Settings) (*writer, error) {
	mode, err := c.Permissions.FileMode()
	if err != nil {
		return nil, err // Validate ran; kept for callers of newWriter.
	}
	dir := c.Path
	if dir == "" {
		dir = s.DataPath
	}
	if dir == "" {
		dir = "data"
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := s.Metrics
	if m == nil {
		m = pipeline.NewMetrics()
	}
	w := &writer{
		written:   m.Counter(pipeline.MetricOutputWriteBytes),
		writeErrs: m.Counter(pipeline.MetricOutputWriteErrors),
		path:      filepath.Join(dir, c.Filename),
		limit:     int64(c.RotateEveryKB) << 10,
		files:     c.NumberOfFiles,
		mode:      mode,
		fsync:     c.Fsync,
		// @metadata as Beats' file and console codecs write it, so the
		// file can be replayed into Logstash or Elasticsearch with its _id.
		opts: codec.Options{Metadata: true, Beat: s.Beat, Type: "_doc", Version: s.Version},
		log:  log,
		w:    bufio.NewWriterSize(nil, bufSize),
	}
	if s.CheckOnly {
		return w, nil
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("file output: create directory: %w", err)
	}
	if err := w.open(); err != nil {
		return nil, err
	}
	if c.RotateOnStartup && w.size > 0 {
		if err := w.rotate(); err != nil {
			w.fail()
			return nil, err
		}
	}
	return w, nil
}

// Publish appends the batch, flushes it to the OS (and fsyncs with
// `fsync: true`) before returning: a nil return means every event is in the
// file. On an error, events already flushed to a rotated file are acked
// and the rest are cut from the file and left pending, so the retry writes
// each event exactly once.
func (w *writer) Publish(ctx context.Context, b *pipeline.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.f == nil {
		// A previous write failed: reopen, possibly after the operator
		// freed space or fixed the directory.
		if err := w.open(); err != nil {
			w.writeErrs.Add(1)
			return err
		}
	}
	acked := 0
	for i := range b.Events {
		w.line = codec.AppendEvent(w.line[:0], &b.Events[i], w.opts)
		w.line = append(w.line, '\n')
		if w.size > 0 && w.size+int64(len(w.line)) > w.limit {
			if err := w.flush(); err != nil {
				w.fail()
				return err
			}
			for ; acked < i; acked++ {
				b.Ack(acked)
			}
			if err := w.rotate(); err != nil {
				w.fail()
				return err
			}
		}
		n, err := w.w.Write(w.line)
		w.size += int64(n)
		if err != nil {
			w.fail()
			return fmt.Errorf("file output: write %s: %w", w.path, err)
		}
	}
	if err := w.flush(); err != nil {
		w.fail()
		return err
	}
	return nil
}

// Close flushes and closes the file. It is safe to call more than once.
func (w *writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.f == nil {
		return nil
	}
	err := w.flush()
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("file output: close %s: %w", w.path, cerr)
	}
	w.f = nil
	return err
}

func (w *writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, w.mode)
	if err != nil {
		return fmt.Errorf("file output: open: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("file output: stat %s: %w", w.path, err)
	}
	// The umask narrowed the mode of a new file, and an old file may have
	// another; only regular files, so a path pointing at a device (a test's
	// /dev/full, an operator's /dev/stdout) is left alone.
	if st.Mode().IsRegular() && st.Mode().Perm() != w.mode {
		if err := f.Chmod(w.mode); err != nil {
			f.Close()
			return fmt.Errorf("file output: set permissions of %s: %w", w.path, err)
		}
	}
	w.f = f
	w.w.Reset(f)
	w.size, w.durable = st.Size(), st.Size()
	return nil
}

func (w *writer) flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("file output: write %s: %w", w.path, err)
	}
	if w.fsync {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("file output: fsync %s: %w", w.path, err)
		}
	}
	w.written.Add(w.size - w.durable)
	w.durable = w.size
	return nil
}

// rotate closes the flushed active file, shifts the numbered files up by
// one (the oldest is renamed over and so deleted) and opens a new file.
func (w *writer) rotate() error {
	if err := w.f.Close(); err != nil {
		w.f = nil
		return fmt.Errorf("file output: close %s: %w", w.path, err)
	}
	w.f = nil
	for i := w.files - 1; i >= 1; i-- {
		src, dst := w.numbered(i-1), w.numbered(i)
		if err := os.Rename(src, dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("file output: rotate: %w", err)
		}
	}
	if err := w.open(); err != nil {
		return err
	}
	if w.fsync {
		// The renames and the new file are durable only once the directory
		// is synced (fsync(2): "an explicit fsync() on a file descriptor for
		// the directory is also needed").
		if err := syncDir(filepath.Dir(w.path)); err != nil {
			return err
		}
	}
	w.log.Debug("file output: rotated", "path", w.path, "keep", w.files)
	return nil
}

// fail cuts the file back to its last flushed size, so that a retried
// batch leaves no partial line, and closes it; the next Publish reopens.
func (w *writer) fail() {
	w.writeErrs.Add(1)
	if w.f == nil {
		return
	}
	if st, err := w.f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > w.durable {
		if err := w.f.Truncate(w.durable); err != nil {
			w.log.Warn("file output: cannot remove the partial batch; the retry may duplicate events", "path", w.path, "error", err)
		}
	}
	w.f.Close()
	w.f = nil
	w.w.Reset(io.Discard)
}

func (w *writer) numbered(i int) string {
	if i == 0 {
		return w.path
	}
	return w.path + "." + strconv.Itoa(i)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("file output: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("file output: sync directory %s: %w", dir, err)
	}
	return nil
}
