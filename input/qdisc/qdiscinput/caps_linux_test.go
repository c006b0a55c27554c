package qdiscinput

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/fleutan/fleutanbeat/input/qdisc"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/internal/caps"
)

// fakeStatus makes a ProcRoot whose self/status holds the given set.
func fakeStatus(t *testing.T, have caps.Set) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	status := fmt.Sprintf("Name:\tfleutanbeat\nCapEff:\t%016x\n", uint64(have))
	if err := os.WriteFile(filepath.Join(root, "self", "status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestMissingCapabilitiesDegradeWithOneNamedLine(t *testing.T) {
	all := caps.Set(1<<caps.SysPtrace | 1<<caps.DACReadSearch | 1<<caps.SysAdmin | 1<<caps.BPF | 1<<caps.Perfmon)
	tests := []struct {
		name       string
		have       caps.Set
		namespaces string
		bpfFails   bool
		want       []string // messages, in order
		wantAll    bool
	}{
		{"all held", all, NamespacesAll, false, nil, true},
		{"no perfmon", all &^ (1 << caps.Perfmon), NamespacesHost, true,
			[]string{"qdisc: eBPF needs CAP_PERFMON, which the agent lacks: flow attribution disabled, qdisc and class statistics go on"}, false},
		{"no sys_admin", all &^ (1 << caps.SysAdmin), NamespacesAll, false,
			[]string{"qdisc: other network namespaces needs CAP_SYS_ADMIN, which the agent lacks: collecting the agent's own network namespace only"}, false},
		{"no ptrace", all &^ (1 << caps.SysPtrace), NamespacesHost, false,
			[]string{"qdisc: process attribution needs CAP_SYS_PTRACE, which the agent lacks: flows of other users' sockets have no process"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, nil))
			cfg := DefaultConfig()
			cfg.Namespaces = tt.namespaces
			in := newQdiscInput(cfg, input.Settings{Logger: log, ProcRoot: fakeStatus(t, tt.have)}, nil)
			in.openXmit = func() (*qdisc.XmitCounter, error) {
				if tt.bpfFails {
					return nil, errors.New("qdisc: eBPF flow attribution unavailable: operation not permitted")
				}
				return &qdisc.XmitCounter{}, nil // attached to nothing: only the log lines matter here
			}
			in.readCaps()
			if err := in.startAttribution(); err != nil {
				t.Fatal(err)
			}
			var msgs []string
			for _, l := range strings.Split(buf.String(), "\n") {
				if strings.Contains(l, "level=WARN") {
					msgs = append(msgs, l)
				}
			}
			if len(msgs) != len(tt.want) {
				t.Fatalf("%d warnings, want %d:\n%s", len(msgs), len(tt.want), buf.String())
			}
			for i, w := range tt.want {
				if !strings.Contains(msgs[i], `msg="`+w+`"`) {
					t.Errorf("warning %d = %s\nwant msg %q", i, msgs[i], w)
				}
			}
			if in.opts.AllNamespaces != tt.wantAll {
				t.Errorf("AllNamespaces = %v, want %v", in.opts.AllNamespaces, tt.wantAll)
			}
		})
	}
}
