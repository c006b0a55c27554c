package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

// TestHostfsRootsTheInputsReads runs the agent with --hostfs: with an
// empty hostfs the cpu input's reads fail naming <hostfs>/proc/stat (so
// they go there, not to /proc), and with the host's /proc bind-mounted at
// <hostfs>/proc the same run reports cores without a warning.
func TestHostfsRootsTheInputsReads(t *testing.T) {
	nstest.RequireRoot(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	hostfs := filepath.Join(dir, "hostfs")
	if err := os.MkdirAll(filepath.Join(hostfs, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "fleutanbeat.yml")
	if err := os.WriteFile(cfg, []byte("fleutanbeat.inputs:\n  - type: cpu\n    period: 1s\n    method: sampling\noutput.console: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() (stdout, stderr string) {
		t.Helper()
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, "run", "-e", "-c", cfg, "--path.home", filepath.Join(dir, "home"), "--hostfs", hostfs)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("agent: %v\n%s", err, errb.String())
		}
		return out.String(), errb.String()
	}

	out, log := run()
	if want := "open " + hostfs + "/proc/stat"; !strings.Contains(log, want) {
		t.Errorf("with an empty hostfs the log does not name %s:\n%s", want, log)
	}
	if strings.Contains(out, `"scope":"core"`) {
		t.Errorf("core events without a /proc under hostfs:\n%s", out)
	}

	nstest.Cmd(t, "mount", "--bind", "/proc", filepath.Join(hostfs, "proc"))
	t.Cleanup(func() { exec.Command("umount", "-l", filepath.Join(hostfs, "proc")).Run() })
	out, log = run()
	if strings.Contains(log, `"level":"WARN"`) {
		t.Errorf("warnings with the host's /proc under hostfs:\n%s", log)
	}
	if !strings.Contains(out, `"scope":"core"`) {
		t.Errorf("no core events with the host's /proc under hostfs:\n%s\n%s", out, log)
	}
}
