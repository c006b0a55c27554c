package elasticsearch

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// TestOutput checks every host for `test output`: the host answers, TLS
// verifies, the credentials are accepted, the server is Elasticsearch, and
// which version it runs. It prints one line per step, Beats style, and
// returns an error naming the first failing host and step.
func TestOutput(ctx context.Context, cfg Config, w io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s: %w", cfg.engine().Name, err)
	}
	var errs []error
	for _, h := range cfg.Hosts {
		if err := testHost(ctx, cfg, h, w); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func testHost(ctx context.Context, cfg Config, host string, w io.Writer) error {
	u, err := hostURL(host)
	if err != nil {
		return err
	}
	name := cfg.engine().Name
	fmt.Fprintf(w, "%s: %s...\n", name, u)
	step := func(name string, err error) error {
		if err != nil {
			fmt.Fprintf(w, "  %s... ERROR %v\n", name, err)
			return fmt.Errorf("%s: %s: %s: %w", cfg.engine().Name, u, name, err)
		}
		fmt.Fprintf(w, "  %s... OK\n", name)
		return nil
	}
	timeout := min(cfg.Timeout.D(), 10*time.Second)
	addrs, err := net.DefaultResolver.LookupHost(ctx, u.Hostname())
	if err := step("dns lookup", err); err != nil {
		return err
	}
	fmt.Fprintf(w, "  addresses: %s\n", strings.Join(addrs, ", "))
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		err = fmt.Errorf("host unreachable: %w", err)
	}
	if err := step("dial up", err); err != nil {
		return err
	}
	if u.Scheme == "https" {
		tc, terr := tlsConfig(cfg.SSL)
		if terr == nil {
			tc = tc.Clone()
			tc.ServerName = u.Hostname()
			tconn := tls.Client(conn, tc)
			hctx, cancel := context.WithTimeout(ctx, timeout)
			terr = tconn.HandshakeContext(hctx)
			cancel()
			if terr == nil {
				st := tconn.ConnectionState()
				fmt.Fprintf(w, "  TLS version: %s\n", tls.VersionName(st.Version))
			}
			conn = tconn
		}
		if terr != nil {
			terr = fmt.Errorf("TLS error (check ssl.certificate_authorities and ssl.verification_mode): %w", terr)
		}
		if cfg.SSL.VerificationMode == "none" {
			fmt.Fprintf(w, "  WARN: TLS verification is off (ssl.verification_mode: none)\n")
		}
		if err := step("TLS", terr); err != nil {
			conn.Close()
			return err
		}
	} else {
		fmt.Fprintf(w, "  TLS... WARN secure connection disabled\n")
	}
	conn.Close()

	one := cfg
	one.Hosts = []string{host}
	client, err := newClient(one, "fleutanbeat")
	if err != nil {
		return step("talk to server", err)
	}
	version, err := serverVersion(ctx, client, one, u.Host)
	if err := step("talk to server", err); err != nil {
		return err
	}
	fmt.Fprintf(w, "  version: %s\n", version)
	return nil
}

// serverVersion asks GET / (the product check runs on its answer); servers
// without the rest-root module, such as the integration-test distribution,
// answer 404 or 405 there, so the local node's info is asked instead.
func serverVersion(ctx context.Context, client interface {
	Perform(*http.Request) (*http.Response, error)
}, cfg Config, host string) (string, error) {
	eng := cfg.engine()
	get := func(path string) (int, []byte, error) {
		ctx, cancel := context.WithTimeout(ctx, min(cfg.Timeout.D(), 30*time.Second))
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		if err != nil {
			return 0, nil, err
		}
		res, err := client.Perform(req)
		if err != nil {
			if pe, ok := productErrorOf(eng, host, err); ok {
				return 0, nil, pe
			}
			return 0, nil, describeTransportError(eng, err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		if err != nil {
			return 0, nil, err
		}
		if res.StatusCode/100 == 2 && eng.Identify != nil && !eng.Identify(res) {
			return 0, nil, WrongProduct(eng, host)
		}
		return res.StatusCode, body, nil
	}
	status, body, err := get("/")
	if err != nil {
		return "", err
	}
	if status == http.StatusOK {
		var info struct {
			Version struct {
				Number string `json:"number"`
			} `json:"version"`
		}
		if json.Unmarshal(body, &info) == nil && info.Version.Number != "" {
			return info.Version.Number, nil
		}
		return "", fmt.Errorf("GET / answered without version.number: %.200s", body)
	}
	if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
		return "", statusError(eng, "GET /", status, body)
	}
	status, body, err = get("/_nodes/_local?filter_path=nodes.*.version")
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", statusError(eng, "GET /_nodes/_local", status, body)
	}
	var nodes struct {
		Nodes map[string]struct {
			Version string `json:"version"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(body, &nodes); err != nil {
		return "", fmt.Errorf("GET /_nodes/_local: %w", err)
	}
	for _, n := range nodes.Nodes {
		if n.Version != "" {
			return n.Version, nil
		}
	}
	return "", errors.New("GET /_nodes/_local answered without a version")
}
