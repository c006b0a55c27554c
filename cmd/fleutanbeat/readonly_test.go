package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

// tree lists every file and directory under dir, relative to it.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// installBinary lays out a Beats-style directory: the binary in root/bin
// and the shipped config in root, which is also the working directory.
func installBinary(t *testing.T) (root, bin string) {
	t.Helper()
	root = t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(buildBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(root, "bin", "fleutanbeat")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(shippedConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "fleutanbeat.yml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return root, bin
}

// TestReadOnlyCommandsCreateNoFiles runs every command but run and setup
// the way a user does (the binary found by its path, no --path.home) and
// checks that the directory holds afterwards exactly what it held before:
// path.home defaults to bin/, so a file output or a data directory
// created by mistake would appear as bin/data.
func TestReadOnlyCommandsCreateNoFiles(t *testing.T) {
	root, bin := installBinary(t)
	before := tree(t, root)
	for _, args := range [][]string{
		{"test", "config"},
		{"test", "output"},
		{"export", "config"},
		{"export", "template"},
		{"export", "dashboards"},
		{"version"},
		{"--help"},
		{"test", "config", "-E", "output.file.path=out", "-E", "logging.to_files=true"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fleutanbeat %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if after := tree(t, root); !slices.Equal(after, before) {
			t.Fatalf("fleutanbeat %s changed the directory:\nbefore %v\nafter  %v", strings.Join(args, " "), before, after)
		}
	}
}

// TestTestOutputChecksTheFileWithoutCreatingIt: `test output` under
// output.file says whether the file could be written, and creates nothing.
func TestTestOutputChecksTheFileWithoutCreatingIt(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name, path string
		code       int
		says       string
	}{
		{"new directory under a writable one", filepath.Join(home, "a", "b"), exitOK, "output.file: OK"},
		{"under a regular file", filepath.Join(shippedConfig(t), "sub"), exitConfig, "not a directory"},
		{"in procfs", "/proc/self", exitConfig, "is not writable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path == "/proc/self" && os.Geteuid() != 0 {
				t.Skip("procfs refuses writes; non-root may not even stat it the same way")
			}
			var stdout, stderr bytes.Buffer
			code := Main([]string{"test", "output", "-c", shippedConfig(t), "--path.home", home,
				"-E", "output.file.path=" + tt.path}, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String()+stderr.String(), tt.says) {
				t.Fatalf("exit %d, want %d; output %q %q, want %q", code, tt.code, stdout.String(), stderr.String(), tt.says)
			}
		})
	}
	if got := tree(t, home); len(got) != 0 {
		t.Errorf("test output created %v", got)
	}
}

// TestExportUnderFileOutput: export template and export dashboards
// contact nothing, so they work whatever output is active (Beats).
func TestExportUnderFileOutput(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"export", "template"}, []string{
			"PUT /_index_template/metrics-fleutan.flows\n", "PUT /_index_template/metrics-fleutan.cpu\n",
			"PUT /_index_template/metrics-fleutan.qdisc\n", "PUT /_component_template/fleutan@mappings\n"}},
		{[]string{"export", "template", "-E", "setup.template.number_of_shards=3"}, []string{`"number_of_shards": 3`}},
		{[]string{"export", "dashboards"}, []string{`"type":"dashboard"`, `"type":"index-pattern"`}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			home := t.TempDir()
			var stdout, stderr bytes.Buffer
			args := append(tt.args, "-c", shippedConfig(t), "--path.home", home)
			if code := Main(args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d under output.file; stderr: %s", code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}

// TestPathHomeIsTheBinarysDirectory holds the Beats rule the README and
// fleutanbeat.yml state: without --path.home, data goes next to the binary
// (bin/data); `make run` passes --path.home . and so writes ./data.
func TestPathHomeIsTheBinarysDirectory(t *testing.T) {
	nstest.RequireRoot(t)
	root, bin := installBinary(t)
	for _, tt := range []struct {
		name  string
		extra []string
		data  string
	}{
		{"default", nil, filepath.Join(root, "bin", "data")},
		{"--path.home . as make run", []string{"--path.home", "."}, filepath.Join(root, "data")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "-e", "-E", "logging.metrics.enabled=false",
				"-E", "queue.mem.flush.timeout=100ms"}, tt.extra...)
			cmd := exec.Command(bin, args...)
			cmd.Dir = root
			stderr := &lockedBuffer{}
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			file := filepath.Join(tt.data, "fleutanbeat.ndjson")
			waitFor(t, 30*time.Second, "events in "+file, func() bool {
				st, err := os.Stat(file)
				return err == nil && st.Size() > 0
			})
			if _, err := os.Stat(filepath.Join(tt.data, "meta.json")); err != nil {
				t.Errorf("agent id not persisted next to the events: %v", err)
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("agent: %v\n%s", err, stderr.String())
			}
			if err := os.RemoveAll(tt.data); err != nil {
				t.Fatal(err)
			}
		})
	}
}
