package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// monitor is the http.enabled endpoint: GET / (agent info), /stats (JSON
// counters), /metrics (Prometheus text format).
type monitor struct {
	srv *http.Server
	ln  net.Listener
}

func startMonitor(c httpConfig, m *pipeline.Metrics, info pipeline.AgentInfo, hostname string, log *slog.Logger) (*monitor, error) {
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w", addr, err)
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
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		writePrometheus(w, m.Snapshot())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("http: monitoring endpoint stopped", "error", err)
		}
	}()
	log.Info("monitoring endpoint listening", "address", ln.Addr().String())
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

// writePrometheus renders samples as fleutanbeat_<dotted_name>; counters get
// the _total suffix, labeled ones a label.
func writePrometheus(w http.ResponseWriter, samples []pipeline.Sample) {
	var b strings.Builder
	typed := map[string]bool{}
	for _, s := range samples {
		name := "fleutanbeat_" + strings.NewReplacer(".", "_", "-", "_").Replace(s.Name)
		if s.IsText {
			// A text is an info metric, as Prometheus exporters write
			// versions and modes: the value in a label, 1 as the sample.
			name += "_info"
			fmt.Fprintf(&b, "# TYPE %s gauge\n%s{value=%q} 1\n", name, name, s.Text)
			continue
		}
		kind := "gauge"
		if !s.Gauge {
			name += "_total"
			kind = "counter"
		}
		if !typed[name] {
			fmt.Fprintf(&b, "# TYPE %s %s\n", name, kind)
			typed[name] = true
		}
		if s.Label != "" {
			fmt.Fprintf(&b, "%s{%s=%q} %d\n", name, s.Label, s.Value, s.N)
		} else {
			fmt.Fprintf(&b, "%s %d\n", name, s.N)
		}
	}
	_, _ = w.Write([]byte(b.String()))
}
