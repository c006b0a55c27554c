// Package diskqueue is the disk queue (queue.disk): events are appended to
// segment files under path.data and deleted segment by segment once the
// output has acknowledged every record in them, so events survive crashes,
// restarts and output outages (at-least-once delivery).
package diskqueue

import (
	"errors"
	"time"

	"github.com/fleutan/fleutanbeat/config"
)

// OnFull says what Push does when max_size is reached.
const (
	OnFullBlock      = "block"
	OnFullDropOldest = "drop_oldest"
)

// Config is `queue.disk`.
type Config struct {
	// Path is the segment directory; empty means ${path.data}/queue.
	Path string `yaml:"path"`
	// MaxSize bounds the bytes of all segment files, acked or not: the
	// queue deletes whole segments, so the bound counts what is on disk.
	MaxSize config.ByteSize `yaml:"max_size"`
	// SegmentSize is the size at which the writer starts a new segment.
	SegmentSize config.ByteSize `yaml:"segment_size"`
	// OnFull is block (backpressure to the inputs) or drop_oldest.
	OnFull string `yaml:"on_full"`
	// Flush is the fsync policy: after Events records or Timeout since the
	// first unsynced record, whichever comes first. Records are written to
	// the file at once, so a killed agent loses nothing; fsync bounds what a
	// power loss or kernel crash can take.
	Flush struct {
		Events  int             `yaml:"events"`
		Timeout config.Duration `yaml:"timeout"`
	} `yaml:"flush"`
	// ReadAhead is how many bytes the reader reads from a segment at once.
	ReadAhead config.ByteSize `yaml:"read_ahead"`
}

// DefaultConfig returns the defaults documented in fleutanbeat.yml.
func DefaultConfig() Config {
	c := Config{
		MaxSize:     1 << 30,
		SegmentSize: 64 << 20,
		OnFull:      OnFullBlock,
		ReadAhead:   1 << 20,
	}
	c.Flush.Events = 4096
	c.Flush.Timeout = config.Duration(time.Second)
	return c
}

// Validate checks the settings.
func (c Config) Validate() error {
	var errs []error
	if c.MaxSize < 1<<20 {
		errs = append(errs, config.Errorf("max_size", "must be at least 1MiB, got %d bytes", c.MaxSize))
	}
	if c.SegmentSize < 64<<10 {
		errs = append(errs, config.Errorf("segment_size", "must be at least 64KiB, got %d bytes", c.SegmentSize))
	} else if c.MaxSize >= 1<<20 && c.SegmentSize > c.MaxSize/2 {
		// Only sealed segments can be deleted; with at least two segments
		// under max_size, a full queue always has one to free.
		errs = append(errs, config.Errorf("segment_size", "%d bytes is more than half of max_size (%d bytes)", c.SegmentSize, c.MaxSize))
	}
	if c.OnFull != OnFullBlock && c.OnFull != OnFullDropOldest {
		errs = append(errs, config.Errorf("on_full", "%q is not one of block, drop_oldest", c.OnFull))
	}
	if c.Flush.Events < 1 {
		errs = append(errs, config.Errorf("flush.events", "must be at least 1, got %d", c.Flush.Events))
	}
	if c.Flush.Timeout < 0 {
		errs = append(errs, config.Errorf("flush.timeout", "must not be negative"))
	}
	if c.ReadAhead < 4<<10 {
		errs = append(errs, config.Errorf("read_ahead", "must be at least 4KiB, got %d bytes", c.ReadAhead))
	}
	return errors.Join(errs...)
}
