package logstash

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fleutan/fleutanbeat/config"
)

// DefaultPort is the port of Logstash's beats input.
const DefaultPort = 5044

// Config is the `output.logstash` section, with Beats' keys and defaults.
type Config struct {
	// Hosts are "host" or "host:port" ("[v6]:port"); a missing port is
	// DefaultPort.
	Hosts []string `yaml:"hosts"`
	// LoadBalance spreads batches over all hosts (each client owns one
	// host); otherwise clients use one host and fail over to the next.
	LoadBalance bool `yaml:"loadbalance"`
	// Worker is the number of clients per host.
	Worker int `yaml:"worker"`
	// BulkMaxSize bounds the events per batch and per lumberjack window.
	BulkMaxSize int `yaml:"bulk_max_size"`
	// Pipelining is how many windows of a batch may await their ACK at
	// once; 0 waits for each window's ACK before sending the next.
	Pipelining int `yaml:"pipelining"`
	// SlowStart begins with a window of 10 events and grows it by half on
	// every fully acknowledged window up to bulk_max_size, halving it on
	// errors, as Beats does to probe a Logstash that is short of memory.
	SlowStart        bool            `yaml:"slow_start"`
	CompressionLevel int             `yaml:"compression_level"`
	Timeout          config.Duration `yaml:"timeout"`
	// TTL closes a connection that is older than this before the next
	// batch, so that clients behind a load balancer spread again; 0 keeps
	// connections until they fail.
	TTL     config.Duration `yaml:"ttl"`
	Backoff BackoffConfig   `yaml:"backoff"`
	// Index is written as @metadata.beat; it defaults to the agent's name
	// (Settings.Beat). Logstash pipelines name indices after it.
	Index string    `yaml:"index"`
	SSL   TLSConfig `yaml:"ssl"`
	// ProxyURL is a socks5:// URL (optionally with user:password@).
	ProxyURL string `yaml:"proxy_url"`
	// ProxyUseLocalResolver resolves host names here instead of at the
	// proxy.
	ProxyUseLocalResolver bool `yaml:"proxy_use_local_resolver"`
}

// BackoffConfig bounds the wait before reconnecting to a host that failed:
// it doubles from Init on every consecutive failure up to Max.
type BackoffConfig struct {
	Init config.Duration `yaml:"init"`
	Max  config.Duration `yaml:"max"`
}

// DefaultConfig returns Beats' defaults; hosts has no default.
func DefaultConfig() Config {
	return Config{
		Worker:           1,
		BulkMaxSize:      2048,
		Pipelining:       2,
		CompressionLevel: 3,
		Timeout:          config.Duration(30 * time.Second),
		Backoff: BackoffConfig{
			Init: config.Duration(time.Second),
			Max:  config.Duration(60 * time.Second),
		},
		SSL: DefaultTLSConfig(),
	}
}

// Validate checks the values; keys in errors are relative to
// output.logstash.
func (c Config) Validate() error {
	var errs []error
	if len(c.Hosts) == 0 {
		errs = append(errs, config.Errorf("hosts", "at least one host is required (such as localhost:5044)"))
	}
	seen := map[string]bool{}
	for i, h := range c.Hosts {
		addr, err := hostPort(h)
		if err != nil {
			errs = append(errs, config.Errorf(fmt.Sprintf("hosts.%d", i), "%v", err))
			continue
		}
		if seen[addr] {
			errs = append(errs, config.Errorf(fmt.Sprintf("hosts.%d", i), "%q is listed twice", h))
		}
		seen[addr] = true
	}
	if c.Worker < 1 {
		errs = append(errs, config.Errorf("worker", "must be at least 1, got %d", c.Worker))
	}
	if c.BulkMaxSize < 1 {
		errs = append(errs, config.Errorf("bulk_max_size", "must be at least 1, got %d", c.BulkMaxSize))
	}
	if c.Pipelining < 0 {
		errs = append(errs, config.Errorf("pipelining", "must not be negative, got %d", c.Pipelining))
	}
	if c.CompressionLevel < 0 || c.CompressionLevel > 9 {
		errs = append(errs, config.Errorf("compression_level", "%d is out of range [0, 9] (0 disables compression)", c.CompressionLevel))
	}
	if c.Timeout <= 0 {
		errs = append(errs, config.Errorf("timeout", "must be positive"))
	}
	if c.TTL < 0 {
		errs = append(errs, config.Errorf("ttl", "must not be negative"))
	}
	if c.Backoff.Init <= 0 {
		errs = append(errs, config.Errorf("backoff.init", "must be positive"))
	}
	if c.Backoff.Max < c.Backoff.Init {
		errs = append(errs, config.Errorf("backoff.max", "%s is less than backoff.init (%s)", c.Backoff.Max.D(), c.Backoff.Init.D()))
	}
	if c.ProxyURL != "" {
		if _, err := parseProxyURL(c.ProxyURL); err != nil {
			errs = append(errs, config.Errorf("proxy_url", "%v", err))
		}
	}
	if err := c.SSL.Validate(); err != nil {
		errs = append(errs, config.Prefix("ssl", err))
	}
	return errors.Join(errs...)
}

// hostPort normalises a hosts entry to host:port.
func hostPort(h string) (string, error) {
	if strings.TrimSpace(h) != h || h == "" {
		return "", fmt.Errorf("%q is not a host or host:port", h)
	}
	if strings.Contains(h, "://") {
		return "", fmt.Errorf("%q: give host:port without a scheme (lumberjack is not HTTP)", h)
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// A bare host, or an IPv6 address without brackets.
		if strings.Count(h, ":") > 1 && !strings.HasPrefix(h, "[") {
			host = h
		} else if !strings.Contains(h, ":") {
			host = h
		} else {
			return "", fmt.Errorf("%q is not a host or host:port", h)
		}
		port = strconv.Itoa(DefaultPort)
	}
	if host == "" || strings.ContainsAny(host, "/ ") {
		return "", fmt.Errorf("%q has no valid host name", h)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number in 1..65535", h, port)
	}
	return net.JoinHostPort(host, port), nil
}

// parseProxyURL accepts socks5:// (and socks5h://, which resolves at the
// proxy as socks5:// does by default here).
func parseProxyURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", redactURL(s))
	}
	if u.Scheme != "socks5" && u.Scheme != "socks5h" {
		return nil, fmt.Errorf("scheme %q is not supported; lumberjack runs over TCP, so only socks5:// proxies work", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no proxy host:port", redactURL(s))
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "1080")
	}
	return u, nil
}

// redactURL hides a password in a proxy URL that is being quoted back.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			return "xxxxx" + s[i:]
		}
		return s
	}
	return u.Redacted()
}
