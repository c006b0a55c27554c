package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fleutan/fleutanbeat/config"
)

// httpConfig is the `http` section: the monitoring endpoint, and the
// local query API on it.
type httpConfig struct {
	Enabled bool   `yaml:"enabled"`
	Host    string `yaml:"host"`
	Port    int    `yaml:"port"`
	API     struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"api"`
}

func defaultHTTPConfig() httpConfig {
	return httpConfig{Host: "localhost", Port: 5066}
}

// unixPrefix marks a unix socket in http.host, as in Beats:
// unix:///run/fleutanbeat/api.sock.
const unixPrefix = "unix://"

// socketPath is the unix socket http.host names, "" for a TCP host.
func (c httpConfig) socketPath() string {
	if p, ok := strings.CutPrefix(c.Host, unixPrefix); ok {
		return p
	}
	return ""
}

func (c httpConfig) Validate() error {
	var errs []error
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, config.Errorf("port", "%d is not a TCP port (0-65535)", c.Port))
	}
	switch {
	case c.Host == "":
		errs = append(errs, config.Errorf("host", "must not be empty"))
	case strings.HasPrefix(c.Host, unixPrefix):
		if p := c.socketPath(); !filepath.IsAbs(p) {
			errs = append(errs, config.Errorf("host", "%q: a unix socket needs an absolute path (unix:///run/fleutanbeat/api.sock)", c.Host))
		}
	case c.API.Enabled && !isLoopbackHost(c.Host):
		// The API shows every process's flows with no authentication: it
		// must not be reachable from another host.
		errs = append(errs, config.Errorf("host", "%q is not a loopback address: with http.api.enabled the endpoint must listen on localhost, 127.0.0.0/8, ::1 or a unix socket (unix:///run/fleutanbeat/api.sock)", c.Host))
	}
	if c.API.Enabled && !c.Enabled {
		errs = append(errs, config.Errorf("api.enabled", "the query API is served by the monitoring endpoint: set http.enabled: true too"))
	}
	return errors.Join(errs...)
}

// isLoopbackHost accepts the name localhost and loopback literals; any other
// name could resolve anywhere, so it is refused rather than looked up.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
	return err == nil && ip.IsLoopback()
}

// loggingConfig is the `logging` section.
type loggingConfig struct {
	Level    string `yaml:"level"`
	ToStderr bool   `yaml:"to_stderr"`
	ToFiles  bool   `yaml:"to_files"`
	JSON     bool   `yaml:"json"`
	Files    struct {
		Path string `yaml:"path"`
		Name string `yaml:"name"`
	} `yaml:"files"`
	Metrics struct {
		Enabled bool            `yaml:"enabled"`
		Period  config.Duration `yaml:"period"`
	} `yaml:"metrics"`
}

func defaultLoggingConfig() loggingConfig {
	var c loggingConfig
	c.Level = "info"
	c.ToFiles = true
	c.JSON = true
	c.Files.Name = "fleutanbeat"
	c.Metrics.Enabled = true
	c.Metrics.Period = config.Duration(30 * time.Second)
	return c
}

var levels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo,
	"warning": slog.LevelWarn, "warn": slog.LevelWarn, "error": slog.LevelError,
}

func (c loggingConfig) Validate() error {
	var errs []error
	if _, ok := levels[strings.ToLower(c.Level)]; !ok {
		errs = append(errs, config.Errorf("level", "%q is not a level (debug, info, warning, error)", c.Level))
	}
	if c.Metrics.Enabled && c.Metrics.Period.D() < time.Second {
		errs = append(errs, config.Errorf("metrics.period", "must be at least 1s, got %s", c.Metrics.Period.D()))
	}
	if c.Files.Name == "" || strings.ContainsRune(c.Files.Name, '/') {
		errs = append(errs, config.Errorf("files.name", "%q is not a file name", c.Files.Name))
	}
	return errors.Join(errs...)
}

func (c loggingConfig) level() slog.Level { return levels[strings.ToLower(c.Level)] }

// errorLines prints joined errors one per line, positioned ones in file
// order so that a user fixes them top to bottom.
func errorLines(err error) string {
	var errs []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		errs = append(errs, e)
	}
	walk(err)
	pos := func(e error) (string, int, int) {
		var ce *config.Error
		if errors.As(e, &ce) {
			return ce.File, ce.Line, ce.Column
		}
		return "", 0, 0
	}
	sort.SliceStable(errs, func(i, j int) bool {
		fi, li, ci := pos(errs[i])
		fj, lj, cj := pos(errs[j])
		if fi != fj {
			return fi < fj
		}
		if li != lj {
			return li < lj
		}
		return ci < cj
	})
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func fmtErr(format string, args ...any) error { return fmt.Errorf(format, args...) }
