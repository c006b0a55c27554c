package flowsinput

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/input"
	"github.com/fleutan/fleutanbeat/input/flows"
	"github.com/fleutan/fleutanbeat/input/internal/caps"
)

func TestDegradeLogsOneLineNamingEachMissingCapability(t *testing.T) {
	all := caps.Set(1<<caps.SysPtrace | 1<<caps.DACReadSearch | 1<<caps.SysAdmin)
	tests := []struct {
		name       string
		namespaces string
		have       caps.Set
		want       []string // one log line each, in order
		wantAll    bool     // AllNamespaces after degrade
	}{
		{"everything held", NamespacesAll, all, nil, true},
		{"no ptrace", NamespacesHost, all &^ (1 << caps.SysPtrace),
			[]string{"flows: process attribution needs CAP_SYS_PTRACE, which the agent lacks: only sockets of the agent's own user get a process"}, false},
		{"no dac and no ptrace", NamespacesHost, 0,
			[]string{"flows: process attribution needs CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, which the agent lacks: only sockets of the agent's own user get a process"}, false},
		{"no sys_admin with namespaces all", NamespacesAll, all &^ (1 << caps.SysAdmin),
			[]string{"flows: other network namespaces needs CAP_SYS_ADMIN, which the agent lacks: collecting the agent's own network namespace only"}, false},
		{"no sys_admin with namespaces host", NamespacesHost, all &^ (1 << caps.SysAdmin), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, nil))
			c := DefaultConfig()
			c.Namespaces = tt.namespaces
			in, err := newInput(c, &flows.Filter{}, input.Settings{Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			fi := in.(*flowsInput)
			fi.degrade(tt.have)
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if l != "" {
					lines = append(lines, l)
				}
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(tt.want), buf.String())
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], "msg=\""+w+"\"") {
					t.Errorf("line %d = %s\nwant msg %q", i, lines[i], w)
				}
			}
			if fi.opts.AllNamespaces != tt.wantAll {
				t.Errorf("AllNamespaces = %v, want %v", fi.opts.AllNamespaces, tt.wantAll)
			}
		})
	}
}
