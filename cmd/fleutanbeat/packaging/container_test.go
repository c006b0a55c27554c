package packaging

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type instruction struct {
	cmd, args string
	line      int
}

// parseDockerfile splits a Dockerfile into instructions (Dockerfile
// reference: one instruction per line, '\' continues, '#' comments).
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: unterminated continuation", path)
	}
	return out
}

// TestDockerfileRunsTheStaticBinaryWithoutAShell checks what can be
// checked without a Docker engine: known instructions only, no RUN (the
// final image has no shell), exec-form ENTRYPOINT and CMD, COPY sources
// that `make build` and the repository provide, and the same command line
// as the systemd unit.
func TestDockerfileRunsTheStaticBinaryWithoutAShell(t *testing.T) {
	known := []string{"FROM", "COPY", "ENTRYPOINT", "CMD", "VOLUME", "USER", "LABEL", "ARG", "ENV", "WORKDIR", "EXPOSE"}
	var entry, cmd []string
	froms := 0
	for _, in := range parseDockerfile(t, "Dockerfile") {
		if !slices.Contains(known, in.cmd) {
			t.Errorf("line %d: %s is not expected in a shell-less image", in.line, in.cmd)
		}
		switch in.cmd {
		case "FROM":
			froms++
		case "COPY":
			f := strings.Fields(in.args)
			srcs := slices.DeleteFunc(f[:len(f)-1], func(s string) bool { return strings.HasPrefix(s, "--") })
			for _, s := range srcs {
				if s == "bin/fleutanbeat" {
					continue // made by make build; checked below
				}
				if _, err := os.Stat(filepath.Join(repoRoot(t), s)); err != nil {
					t.Errorf("line %d: COPY source %s: %v", in.line, s, err)
				}
			}
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(in.args), &v); err != nil {
				t.Errorf("line %d: %s must be exec form (a JSON array; no shell): %v", in.line, in.cmd, err)
			}
			if in.cmd == "ENTRYPOINT" {
				entry = v
			} else {
				cmd = v
			}
		}
	}
	if froms != 1 {
		t.Errorf("%d FROM lines, want 1", froms)
	}
	if !slices.Equal(entry, []string{"/usr/share/fleutanbeat/bin/fleutanbeat"}) {
		t.Errorf("ENTRYPOINT = %q", entry)
	}
	unit := strings.Fields(unitDirectives(t, "fleutanbeat.service")["Service.ExecStart"][0])
	if !slices.Equal(cmd, unit[1:]) {
		t.Errorf("CMD = %q, want the unit's arguments %q", cmd, unit[1:])
	}
}

// TestImageBinaryIsStatic checks the binary the image copies: built as
// `make build` builds it, and bin/fleutanbeat itself when present.
func TestImageBinaryIsStatic(t *testing.T) {
	checkStatic(t, buildBinary(t))
	// The check can fail: a dynamically linked program is caught.
	if sh, err := filepath.EvalSymlinks("/bin/sh"); err == nil {
		if p := staticProblems(sh); len(p) == 0 {
			t.Errorf("%s is dynamically linked, but no problem was found", sh)
		}
	}
	if p := filepath.Join(repoRoot(t), "bin", "fleutanbeat"); fileExists(p) {
		checkStatic(t, p)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
