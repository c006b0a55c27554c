package file

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/output"
)

func TestDefaultConfig(t *testing.T) {
	want := Config{Filename: "fleutanbeat.ndjson", RotateEveryKB: 10240, NumberOfFiles: 7, Permissions: "0600"}
	if got := DefaultConfig(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	c := DefaultConfig()
	if err := raw(t, "").Decode(&c); err != nil || c != want {
		t.Errorf("empty section: got %+v, %v; want defaults", c, err)
	}
}

func TestDecodeConfig(t *testing.T) {
	cases := []struct {
		yaml string
		want Config
		mode os.FileMode
	}{
		{"permissions: 0640", Config{Filename: "fleutanbeat.ndjson", RotateEveryKB: 10240, NumberOfFiles: 7, Permissions: "0640"}, 0o640},
		{`permissions: "0600"`, Config{Filename: "fleutanbeat.ndjson", RotateEveryKB: 10240, NumberOfFiles: 7, Permissions: "0600"}, 0o600},
		{"permissions: 0o644", Config{Filename: "fleutanbeat.ndjson", RotateEveryKB: 10240, NumberOfFiles: 7, Permissions: "0o644"}, 0o644},
		{"permissions: 644", Config{Filename: "fleutanbeat.ndjson", RotateEveryKB: 10240, NumberOfFiles: 7, Permissions: "644"}, 0o644},
		{"path: /var/lib/x\nfilename: f.json\nrotate_every_kb: 10\nnumber_of_files: 1024\nrotate_on_startup: true\nfsync: true",
			Config{Path: "/var/lib/x", Filename: "f.json", RotateEveryKB: 10, NumberOfFiles: 1024, Permissions: "0600", RotateOnStartup: true, Fsync: true}, 0o600},
	}
	for _, c := range cases {
		t.Run(c.yaml, func(t *testing.T) {
			got := DefaultConfig()
			if err := raw(t, c.yaml).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if m, _ := got.Permissions.FileMode(); m != c.mode {
				t.Errorf("mode %#o, want %#o", m, c.mode)
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"number_of_files too small", func(c *Config) { c.NumberOfFiles = 1 }, "number_of_files: 1 is out of range [2, 1024]"},
		{"number_of_files too large", func(c *Config) { c.NumberOfFiles = 1025 }, "number_of_files: 1025 is out of range [2, 1024]"},
		{"rotate_every_kb too small", func(c *Config) { c.RotateEveryKB = 9 }, "rotate_every_kb: 9 is out of range [10, 1073741824]"},
		{"rotate_every_kb too large", func(c *Config) { c.RotateEveryKB = 1 << 31 }, "rotate_every_kb: 2147483648 is out of range [10, 1073741824]"},
		{"permissions not octal", func(c *Config) { c.Permissions = "0680" }, `permissions: "0680" is not an octal file mode between 0000 and 0777 (such as 0600)`},
		{"permissions word", func(c *Config) { c.Permissions = "rw-------" }, `permissions: "rw-------" is not an octal file mode between 0000 and 0777 (such as 0600)`},
		{"permissions setuid", func(c *Config) { c.Permissions = "04755" }, `permissions: "04755" is not an octal file mode between 0000 and 0777 (such as 0600)`},
		{"permissions empty", func(c *Config) { c.Permissions = "" }, `permissions: "" is not an octal file mode between 0000 and 0777 (such as 0600)`},
		{"filename empty", func(c *Config) { c.Filename = "" }, "filename: must not be empty"},
		{"filename with directory", func(c *Config) { c.Filename = "a/b" }, `filename: "a/b" must be a plain file name; put the directory in path`},
		{"several at once", func(c *Config) { c.NumberOfFiles = 0; c.RotateEveryKB = 0 },
			"rotate_every_kb: 0 is out of range [10, 1073741824]\nnumber_of_files: 0 is out of range [2, 1024]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.modify(&cfg)
			err := cfg.Validate()
			if err == nil || err.Error() != c.want {
				t.Fatalf("got %v, want %s", err, c.want)
			}
			var ke *config.KeyError
			if !errors.As(err, &ke) {
				t.Errorf("error is not a config.KeyError: %T", err)
			}
		})
	}
}

func TestNewPositionsValidateErrors(t *testing.T) {
	_, err := New(raw(t, "filename: x.ndjson\nnumber_of_files: 1\n"), output.Settings{DataPath: t.TempDir()})
	want := "fleutanbeat.yml:2:18: output.file.number_of_files: 1 is out of range [2, 1024]"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func FuzzModeFileMode(f *testing.F) {
	for _, s := range []string{"0600", "0o644", "777", "", "0x1ff", "-1", "01000", "0_600", " 0600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Mode(s).FileMode()
		if err != nil {
			if m != 0 {
				t.Errorf("%q: error with mode %#o", s, m)
			}
			return
		}
		if m > 0o777 {
			t.Fatalf("%q: accepted mode %#o beyond 0777", s, m)
		}
		back, err := Mode(fmt.Sprintf("%#o", m)).FileMode()
		if err != nil || back != m {
			t.Errorf("%q -> %#o -> %#o, %v", s, m, back, err)
		}
	})
}
