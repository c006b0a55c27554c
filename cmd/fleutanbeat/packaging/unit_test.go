package packaging

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unitDirectives reads a systemd unit into section.Key -> values, one per
// occurrence (systemd.syntax(7); no line continuations are used here).
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not a directive: %q", path, line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

// defaultCaps are the capabilities of the default config, as
// input/internal/caps documents them (which cmd/ cannot import): process
// attribution and eBPF. CAP_SYS_ADMIN, for namespaces: all only, is left
// to the operator. TestLeastPrivilege proves each one is needed.
func defaultCaps() []string {
	return []string{"CAP_BPF", "CAP_DAC_READ_SEARCH", "CAP_PERFMON", "CAP_SYS_PTRACE"}
}

func TestSystemdUnitHardening(t *testing.T) {
	d := unitDirectives(t, "fleutanbeat.service")
	want := map[string]string{
		"Service.User":            "fleutanbeat",
		"Service.Group":           "fleutanbeat",
		"Service.NoNewPrivileges": "yes",
		"Service.ProtectSystem":   "strict",
		"Service.ReadWritePaths":  "/var/lib/fleutanbeat",
		"Service.StateDirectory":  "fleutanbeat",
		"Service.Restart":         "on-failure",
		"Install.WantedBy":        "multi-user.target",
	}
	for k, v := range want {
		if got := d[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Service.AmbientCapabilities", "Service.CapabilityBoundingSet"} {
		if len(d[k]) != 1 {
			t.Fatalf("%s: %q, want one line", k, d[k])
		}
		got := strings.Fields(d[k][0])
		slices.Sort(got)
		if !slices.Equal(got, defaultCaps()) {
			t.Errorf("%s = %v, want %v", k, got, defaultCaps())
		}
	}
	for _, k := range []string{"Service.ProtectProc", "Service.ProcSubset", "Service.DynamicUser", "Service.PrivateUsers"} {
		if _, ok := d[k]; ok {
			t.Errorf("%s would hide other processes or their capabilities from the agent", k)
		}
	}
	exec := strings.Fields(d["Service.ExecStart"][0])
	if exec[0] != "/usr/share/fleutanbeat/bin/fleutanbeat" || !containsSeq(exec, "--path.data", "/var/lib/fleutanbeat") ||
		!containsSeq(exec, "-c", "/etc/fleutanbeat/fleutanbeat.yml") || !slices.Contains(exec, "-e") {
		t.Errorf("ExecStart = %q", d["Service.ExecStart"][0])
	}
}

func containsSeq(s []string, a, b string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == a && s[i+1] == b {
			return true
		}
	}
	return false
}

// TestSystemdUnitVerifies runs systemd-analyze verify, which warns about
// unknown keys and bad values without failing: any output is a failure.
// The ExecStart binary must exist, so a copy points at a built one.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze", false)
	bin := buildBinary(t)
	src, err := os.ReadFile("fleutanbeat.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, "fleutanbeat.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(src, []byte("/usr/share/fleutanbeat/bin/fleutanbeat"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The check can fail: a bad value is reported.
	bad := filepath.Join(dir, "bad.service")
	if err := os.WriteFile(bad, bytes.Replace(src, []byte("Restart=on-failure"), []byte("Restart=sometimes"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(analyze, "verify", "--man=no", bad).CombinedOutput(); !bytes.Contains(out, []byte("sometimes")) {
		t.Errorf("systemd-analyze verify did not report Restart=sometimes: %s", out)
	}
}
