// Package console is output.console: one JSON document per event on
// standard output, as in Beats, for debugging pipelines and piping to jq.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
	"github.com/fleutan/fleutanbeat/output/codec"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// Config is the `output.console` section, with Beats' keys.
type Config struct {
	// Pretty indents each document over several lines.
	Pretty bool `yaml:"pretty"`
	// BatchSize is the most events per Publish (Beats' bulk_max_size).
	BatchSize int `yaml:"bulk_max_size"`
}

// maxBatchSize bounds the memory one batch's text may take.
const maxBatchSize = 1 << 20

// DefaultConfig returns Beats' defaults.
func DefaultConfig() Config { return Config{BatchSize: 2048} }

// Validate checks the values; keys in errors are relative to output.console.
func (c Config) Validate() error {
	var errs []error
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		errs = append(errs, config.Errorf("bulk_max_size", "%d is out of range [1, %d]", c.BatchSize, maxBatchSize))
	}
	return errors.Join(errs...)
}

// New builds output.console writing to standard output.
func New(cfg config.Raw, s output.Settings) (output.Group, error) {
	return NewWithWriter(cfg, s, os.Stdout)
}

// NewWithWriter builds output.console writing to w, which the output never
// closes; tests and `test output` capture the documents this way.
func NewWithWriter(cfg config.Raw, s output.Settings, w io.Writer) (output.Group, error) {
	c := DefaultConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return output.Group{}, err
	}
	m := s.Metrics
	if m == nil {
		m = pipeline.NewMetrics()
	}
	cl := &client{
		written:   m.Counter(pipeline.MetricOutputWriteBytes),
		writeErrs: m.Counter(pipeline.MetricOutputWriteErrors),
		w:         w,
		pretty:    c.Pretty,
		opts:      codec.Options{Metadata: true, Beat: s.Beat, Type: "_doc", Version: s.Version},
	}
	return output.Group{Clients: []pipeline.Output{cl}, BatchSize: c.BatchSize}, nil
}

var errClosed = errors.New("console output: closed")

// client writes each batch with one Write call so that the documents of
// concurrent batches never interleave.
type client struct {
	mu     sync.Mutex
	w      io.Writer
	pretty bool
	opts   codec.Options
	buf    []byte
	closed bool

	written, writeErrs *atomic.Int64
}

// Publish writes the batch; a write error (a closed pipe) retries it.
func (c *client) Publish(ctx context.Context, b *pipeline.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.buf = c.buf[:0]
	for i := range b.Events {
		if c.pretty {
			c.buf = codec.AppendPretty(c.buf, &b.Events[i], c.opts)
		} else {
			c.buf = codec.AppendEvent(c.buf, &b.Events[i], c.opts)
		}
		c.buf = append(c.buf, '\n')
	}
	n, err := c.w.Write(c.buf)
	c.written.Add(int64(n))
	if err != nil {
		c.writeErrs.Add(1)
		return fmt.Errorf("console output: write: %w", err)
	}
	return nil
}

// Close stops further writes; standard output itself stays open for the
// agent's own messages.
func (c *client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}
