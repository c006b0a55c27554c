package packaging

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The credentials of the secret tests: distinctive, so that any copy of
// them in an output is found.
const (
	testPassword = "pw-Zq8vN2xLr5Tt"
	testAPIKey   = "ak-Hj3kW9pQe4Ms:Vb7nC1dF6gYu"
)

// socksRejecter is a SOCKS5 proxy (RFC 1928, RFC 1929) that asks for a
// user name and password, records them and refuses: the output then fails
// and logs, which is what the test wants to read.
type socksRejecter struct {
	ln        net.Listener
	mu        sync.Mutex
	passwords []string
}

func newSocksRejecter(t *testing.T) *socksRejecter {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &socksRejecter{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *socksRejecter) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	if _, err := c.Write([]byte{5, 2}); err != nil { // username/password
		return
	}
	// RFC 1929: VER ULEN UNAME PLEN PASSWD.
	var v [2]byte
	if _, err := io.ReadFull(c, v[:]); err != nil {
		return
	}
	user := make([]byte, v[1])
	if _, err := io.ReadFull(c, user); err != nil {
		return
	}
	if _, err := io.ReadFull(c, v[:1]); err != nil {
		return
	}
	pass := make([]byte, v[0])
	if _, err := io.ReadFull(c, pass); err != nil {
		return
	}
	s.mu.Lock()
	s.passwords = append(s.passwords, string(pass))
	s.mu.Unlock()
	_, _ = c.Write([]byte{1, 1}) // failure
}

func (s *socksRejecter) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.passwords...)
}

// secretConfig takes every credential from the environment: the Kibana
// password and API key of setup.kibana, and the proxy password of the
// Logstash output inside its URL.
func secretConfig(t *testing.T, proxy string) string {
	t.Helper()
	src := `fleutanbeat.inputs:
  - type: flows
    period: 1s
setup.kibana:
  host: http://127.0.0.1:1
  username: elastic
  password: ${FB_TEST_PASSWORD}
  api_key: ${FB_TEST_API_KEY}
output.logstash:
  hosts: ["127.0.0.1:1"]
  timeout: 2s
  backoff.init: 100ms
  backoff.max: 200ms
` + proxy
	p := filepath.Join(t.TempDir(), "fleutanbeat.yml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func secretEnv() []string {
	return append(os.Environ(), "FB_TEST_PASSWORD="+testPassword, "FB_TEST_API_KEY="+testAPIKey)
}

// leaks names the credentials (or their distinctive halves) found in b.
func leaks(b []byte) []string {
	var out []string
	for _, s := range []string{testPassword, testAPIKey, strings.Split(testAPIKey, ":")[0], strings.Split(testAPIKey, ":")[1]} {
		if bytes.Contains(b, []byte(s)) {
			out = append(out, s)
		}
	}
	return out
}

// TestCredentialsNeverShown runs the agent with a password and an API key
// from the environment, its output failing at a proxy that received the
// password, and greps every log line (debug level), /, /stats, /metrics
// and `export config` for them.
func TestCredentialsNeverShown(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	proxy := newSocksRejecter(t)
	cfg := secretConfig(t, "  proxy_url: socks5://proxyuser:${FB_TEST_PASSWORD}@"+proxy.ln.Addr().String()+"\n")
	home := t.TempDir()
	cmd := exec.Command(bin, "run", "-e", "-c", cfg, "--path.home", home, "-E", "logging.level=debug",
		"-E", "http.enabled=true", "-E", "http.host=127.0.0.1", "-E", "http.port=0", "-E", "logging.metrics.period=1s")
	cmd.Env = secretEnv()
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var addr string
	waitFor(t, 20*time.Second, "the monitoring endpoint and two refusals by the proxy", func() bool {
		for _, m := range logLines(stderr.String()) {
			if m["msg"] == "monitoring endpoint listening" {
				addr, _ = m["address"].(string)
			}
		}
		return addr != "" && len(proxy.received()) >= 2 && strings.Contains(stderr.String(), "Non-zero metrics")
	})
	// The credential did reach the output, from the environment.
	if got := proxy.received()[0]; got != testPassword {
		t.Fatalf("proxy received password %q, want the one from the environment", got)
	}
	var served []byte
	for _, path := range []string{"/", "/stats", "/metrics"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(b) == 0 {
			t.Fatalf("GET %s: %d %q", path, resp.StatusCode, b)
		}
		if l := leaks(b); l != nil {
			t.Errorf("GET %s shows %q:\n%s", path, l, b)
		}
		served = append(served, b...)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	log := stderr.String()
	if n := len(logLines(log)); n < 10 {
		t.Fatalf("only %d log lines; the test needs the failing output's:\n%s", n, log)
	}
	if !strings.Contains(log, "username/password authentication failed") {
		t.Errorf("the output's refusal is not logged:\n%s", log)
	}
	for _, line := range strings.Split(log, "\n") {
		if l := leaks([]byte(line)); l != nil {
			t.Errorf("log line shows %q: %s", l, line)
		}
	}

	// export config: the values under secret keys are masked.
	out, err := exportConfig(t, bin, secretConfig(t, ""))
	if err != nil {
		t.Fatalf("export config: %v\n%s", err, out)
	}
	if l := leaks(out); l != nil {
		t.Errorf("export config shows %q:\n%s", l, out)
	}
	if c := bytes.Count(out, []byte("<redacted>")); c != 2 {
		t.Errorf("export config has %d <redacted> values, want 2 (password, api_key):\n%s", c, out)
	}
}

func exportConfig(t *testing.T, bin, cfg string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(bin, "export", "config", "-c", cfg, "--path.home", t.TempDir())
	cmd.Env = secretEnv()
	return cmd.CombinedOutput()
}

// TestExportConfigMasksPasswordsInURLs covers a password inside a URL
// (output.logstash.proxy_url), which no secret key name announces.
func TestExportConfigMasksPasswordsInURLs(t *testing.T) {
	bin := buildBinary(t)
	out, err := exportConfig(t, bin, secretConfig(t, "  proxy_url: socks5://proxyuser:${FB_TEST_PASSWORD}@127.0.0.1:1080\n"))
	if err != nil {
		t.Fatalf("export config: %v\n%s", err, out)
	}
	if l := leaks(out); l != nil {
		t.Fatalf("export config shows the proxy_url password %q", l)
	}
	if !strings.Contains(string(out), "socks5://proxyuser:xxxxx@127.0.0.1:1080") {
		t.Errorf("export config lost the rest of the URL:\n%s", out)
	}
}
