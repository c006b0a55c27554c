package packaging

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
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

// stageImageContext runs build-image.sh in its context-only mode with
// the test's binary and returns the staged build context.
func stageImageContext(t *testing.T) string {
	t.Helper()
	ctx := filepath.Join(t.TempDir(), "ctx")
	out, err := exec.Command("sh", "build-image.sh", buildBinary(t), "fleutanbeat:test", ctx).CombinedOutput()
	if err != nil {
		t.Fatalf("build-image.sh (context only): %v\n%s", err, out)
	}
	return ctx
}

// TestDockerfileRunsTheStaticBinaryWithoutAShell checks what can be
// checked without a Docker engine: FROM scratch (no base image from a
// registry), known instructions only, no RUN (the image has no shell),
// COPY sources that build-image.sh stages, the non-root USER in the
// image's /etc/passwd, exec-form ENTRYPOINT and CMD, and the same command
// line as the systemd unit.
func TestDockerfileRunsTheStaticBinaryWithoutAShell(t *testing.T) {
	known := []string{"FROM", "COPY", "ENTRYPOINT", "CMD", "VOLUME", "USER", "LABEL", "ARG", "ENV", "WORKDIR", "EXPOSE"}
	ctx := stageImageContext(t)
	var entry, cmd []string
	var froms []string
	user := ""
	for _, in := range parseDockerfile(t, "Dockerfile") {
		if !slices.Contains(known, in.cmd) {
			t.Errorf("line %d: %s is not expected in a shell-less image", in.line, in.cmd)
		}
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.args)
		case "USER":
			user = in.args
		case "COPY":
			f := strings.Fields(in.args)
			for _, src := range slices.DeleteFunc(f[:len(f)-1], func(s string) bool { return strings.HasPrefix(s, "--") }) {
				if _, err := os.Stat(filepath.Join(ctx, src)); err != nil {
					t.Errorf("line %d: COPY source %s is not in the staged context: %v", in.line, src, err)
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
	if !slices.Equal(froms, []string{"scratch"}) {
		t.Errorf("FROM %q, want only scratch", froms)
	}
	if !slices.Equal(entry, []string{"/usr/share/fleutanbeat/bin/fleutanbeat"}) {
		t.Errorf("ENTRYPOINT = %q", entry)
	}
	unit := strings.Fields(unitDirectives(t, "fleutanbeat.service")["Service.ExecStart"][0])
	if !slices.Equal(cmd, unit[1:]) {
		t.Errorf("CMD = %q, want the unit's arguments %q", cmd, unit[1:])
	}
	// The default user is a non-root user of the image's own passwd.
	uid, _, _ := strings.Cut(user, ":")
	passwd, err := os.ReadFile(filepath.Join(ctx, "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(passwd), "\n") {
		if f := strings.Split(line, ":"); len(f) == 7 && f[2] == uid {
			found = f[0] == "fleutanbeat"
		}
	}
	if uid == "" || uid == "0" || !found {
		t.Errorf("USER %q: want the non-root fleutanbeat of the image's passwd:\n%s", user, passwd)
	}
	// The machine's CA bundle, a config that strict.perms accepts.
	if st, err := os.Stat(filepath.Join(ctx, "ca-certificates.crt")); err != nil || st.Size() < 10_000 {
		t.Errorf("CA bundle: %v", err)
	}
	if st, err := os.Stat(filepath.Join(ctx, "fleutanbeat.yml")); err != nil {
		t.Error(err)
	} else if st.Mode().Perm() != 0o644 {
		t.Errorf("config in the context has mode %v, want 0644", st.Mode())
	}
	checkStatic(t, filepath.Join(ctx, "fleutanbeat"))
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
