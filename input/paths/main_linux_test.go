package paths

import (
	"context"
	"encoding/json"
	"fmt"
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
	p, err := New(Options{Rate: 1000, Burst: 10, Timeout: 2 * time.Second, MaxTTL: 8})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	path, err := p.Trace(context.Background(), Target{Dst: netip.MustParseAddr(dst)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, _ := json.Marshal(struct {
		CapEff string
		Path   Path
	}{capEff, path})
	fmt.Println(string(out))
	return 0
}
