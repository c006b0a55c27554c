package paths

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary trace the address it names and print
// the path as JSON, with its effective capabilities, instead of running
// the tests: the unprivileged test runs it without any capability.
const helperEnv = "FLEUTAN_PATHS_TRACE"

// methodEnv is the probe method the helper asks for (udp when empty);
// its log goes to stderr, one line per record, without the time.
const methodEnv = "FLEUTAN_PATHS_METHOD"

func TestMain(m *testing.M) {
	if dst := os.Getenv(helperEnv); dst != "" {
		os.Exit(traceHelper(dst))
	}
	os.Exit(m.Run())
}

func traceHelper(dst string) int {
	status, _ := os.ReadFile("/proc/self/status")
	var capEff string
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			capEff = strings.TrimSpace(v)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	p, err := New(Options{Rate: 1000, Burst: 10, Timeout: 2 * time.Second, MaxTTL: 8, Method: Method(os.Getenv(methodEnv)), Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	path, err := p.Trace(context.Background(), Target{Dst: netip.MustParseAddr(dst), Port: 8080})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, _ := json.Marshal(struct {
		CapEff string
		Method Method
		Path   Path
	}{capEff, p.Method(), path})
	fmt.Println(string(out))
	return 0
}
