package file

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/fleutan/fleutanbeat/config"
	"gopkg.in/yaml.v3"
)

// Config is the `output.file` section, with Beats' keys.
type Config struct {
	// Path is the directory of the files; empty means path.data.
	Path string `yaml:"path"`
	// Filename is the active file; rotated files append .1, .2, ...
	Filename string `yaml:"filename"`
	// RotateEveryKB is the size in KiB a file may reach before rotation.
	RotateEveryKB int `yaml:"rotate_every_kb"`
	// NumberOfFiles counts the active file and the rotated ones kept.
	NumberOfFiles int `yaml:"number_of_files"`
	// Permissions is the octal mode of the files, applied regardless of
	// the umask.
	Permissions Mode `yaml:"permissions"`
	// RotateOnStartup starts a new file instead of appending to the one a
	// previous run left.
	RotateOnStartup bool `yaml:"rotate_on_startup"`
	// Fsync makes every Publish fsync the file before acknowledging, so an
	// acknowledged event survives a power loss, not only a crash of the agent.
	Fsync bool `yaml:"fsync"`
}

const (
	minRotateKB = 10
	// maxRotateKB (1 TiB) keeps the byte limit far from int64 overflow.
	maxRotateKB = 1 << 30
	minFiles    = 2
	maxFiles    = 1024
)

// DefaultConfig returns Beats' defaults, except that rotate_on_startup is
// off: restarting the agent keeps appending to the same file.
func DefaultConfig() Config {
	return Config{
		Filename:      "fleutanbeat.ndjson",
		RotateEveryKB: 10240,
		NumberOfFiles: 7,
		Permissions:   "0600",
	}
}

// Validate checks the values; keys in errors are relative to output.file.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Filename == "":
		errs = append(errs, config.Errorf("filename", "must not be empty"))
	case c.Filename == "." || c.Filename == ".." || strings.ContainsRune(c.Filename, '/'):
		errs = append(errs, config.Errorf("filename", "%q must be a plain file name; put the directory in path", c.Filename))
	}
	if c.RotateEveryKB < minRotateKB || c.RotateEveryKB > maxRotateKB {
		errs = append(errs, config.Errorf("rotate_every_kb", "%d is out of range [%d, %d]", c.RotateEveryKB, minRotateKB, maxRotateKB))
	}
	if c.NumberOfFiles < minFiles || c.NumberOfFiles > maxFiles {
		errs = append(errs, config.Errorf("number_of_files", "%d is out of range [%d, %d]", c.NumberOfFiles, minFiles, maxFiles))
	}
	if _, err := c.Permissions.FileMode(); err != nil {
		errs = append(errs, config.Errorf("permissions", "%v", err))
	}
	return errors.Join(errs...)
}

// Mode is a file mode written in octal, as `0600`, `"0600"`, `0o600` or
// `600`. It is always read as octal: YAML 1.2 would read an unquoted 0600 as
// decimal 600, which nobody means for a file mode.
type Mode string

// UnmarshalYAML keeps the text; Validate reports a bad value with its key.
func (m *Mode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected an octal file mode such as 0600")
	}
	*m = Mode(n.Value)
	return nil
}

// FileMode parses the mode; only permission bits are accepted.
func (m Mode) FileMode() (os.FileMode, error) {
	s := strings.TrimPrefix(strings.TrimPrefix(string(m), "0o"), "0O")
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || s == "" || v > 0o777 {
		return 0, fmt.Errorf("%q is not an octal file mode between 0000 and 0777 (such as 0600)", string(m))
	}
	return os.FileMode(v), nil
}
