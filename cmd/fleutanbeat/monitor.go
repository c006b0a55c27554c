package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fleutan/fleutanbeat/cmd/fleutanbeat/queryapi"
	"github.com/fleutan/fleutanbeat/pipeline"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// monitor is the http.enabled endpoint: GET / (agent info), /stats (JSON
// counters), /metrics (Prometheus text format), and with http.api.enabled
// the query API under /api/v1/.
type monitor struct {
	srv *http.Server
	ln  net.Listener
}

// socketMode is the unix socket's permission: only its owner (the agent's
// user, root for the packaged service) may connect, as the API shows every
// process's flows without authentication.
const socketMode = 0o600

// listen opens http.host: a unix socket (unix:///path) or a TCP address.
// With the query API on, a TCP host must resolve to loopback: Validate
// refuses other literals, and this catches a "localhost" that /etc/hosts
// points elsewhere.
func listen(c httpConfig) (net.Listener, error) {
	if path := c.socketPath(); path != "" {
		// A socket left by an agent that did not stop cleanly would make
		// bind fail; remove it, but nothing that is not a socket.
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(path)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("http: listen on unix socket %s: %w", path, err)
		}
		if err := os.Chmod(path, socketMode); err != nil {
			ln.Close()
			return nil, fmt.Errorf("http: unix socket %s: %w", path, err)
		}
		return ln, nil
	}
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w", addr, err)
	}
	if c.API.Enabled {
		if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			ln.Close()
			return nil, fmt.Errorf("http: http.host %q listens on %s, not a loopback address: the query API (http.api.enabled) is local only", c.Host, ln.Addr())
		}
	}
	return ln, nil
}

// startMonitor serves the endpoint; api is the query API's handler, nil
// when it is off (its paths are then 404 like any other).
func startMonitor(c httpConfig, m *pipeline.Metrics, info pipeline.AgentInfo, hostname string, api http.Handler, log *slog.Logger) (*monitor, error) {
	ln, err := listen(c)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"beat": "fleutanbeat", "name": info.Name, "hostname": hostname, "uuid": info.ID,
			"ephemeral_id": info.EphemeralID, "version": version,
			"uptime_ms": time.Since(started).Milliseconds(),
		})
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		tree := m.Tree()
		tree.Put("uptime_ms", time.Since(started).Milliseconds())
		writeJSON(w, tree)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		if err := writePrometheus(w, m.Snapshot()); err != nil {
			log.Debug("http: /metrics reply cut short", "error", err)
		}
	})
	if api != nil {
		mux.Handle(queryapi.Prefix, api)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("http: monitoring endpoint stopped", "error", err)
		}
	}()
	log.Info("monitoring endpoint listening", "address", ln.Addr().String(), "api", api != nil)
	return &monitor{srv: srv, ln: ln}, nil
}

func (mo *monitor) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = mo.srv.Shutdown(ctx)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writePrometheus renders samples in Prometheus' text format as
// fleutanbeat_<dotted_name>: counters get the _total suffix, texts become
// _info gauges with the word in a value label (as exporters report
// versions), and each family the HELP line from pipeline.MetricHelp. The
// exposition library writes the lines so that escaping follows the format.
func writePrometheus(w io.Writer, samples []pipeline.Sample) error {
	var fams []*dto.MetricFamily
	byName := map[string]*dto.MetricFamily{}
	for _, s := range samples {
		name := promName(s)
		mf := byName[name]
		if mf == nil {
			mf = &dto.MetricFamily{Name: proto.String(name), Help: proto.String(promHelp(s.Name)), Type: dto.MetricType_GAUGE.Enum()}
			if !s.Gauge && !s.IsText {
				mf.Type = dto.MetricType_COUNTER.Enum()
			}
			byName[name] = mf
			fams = append(fams, mf)
		}
		m := &dto.Metric{}
		switch {
		case s.IsText:
			m.Label = []*dto.LabelPair{{Name: proto.String("value"), Value: proto.String(s.Text)}}
			m.Gauge = &dto.Gauge{Value: proto.Float64(1)}
		case s.Gauge:
			m.Gauge = &dto.Gauge{Value: proto.Float64(float64(s.N))}
		default:
			m.Counter = &dto.Counter{Value: proto.Float64(float64(s.N))}
		}
		if s.Label != "" {
			m.Label = []*dto.LabelPair{{Name: proto.String(s.Label), Value: proto.String(s.Value)}}
		}
		mf.Metric = append(mf.Metric, m)
	}
	for _, mf := range fams {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return fmt.Errorf("metrics: writing %s: %w", mf.GetName(), err)
		}
	}
	return nil
}

// promName maps a dotted name to a Prometheus family name.
func promName(s pipeline.Sample) string {
	name := "fleutanbeat_" + strings.NewReplacer(".", "_", "-", "_").Replace(s.Name)
	switch {
	case s.IsText:
		return name + "_info"
	case s.Gauge:
		return name
	}
	return name + "_total"
}

// promHelp is the family's HELP text. A metric missing from the table
// still gets a line that names it; the agent's tests fail on that text.
func promHelp(dotted string) string {
	if h, ok := pipeline.MetricHelp(dotted); ok {
		return h
	}
	return helpUndocumented + dotted + " on /stats."
}

const helpUndocumented = "Undocumented: "
