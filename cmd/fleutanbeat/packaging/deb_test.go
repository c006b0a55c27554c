package packaging

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// buildDeb runs build-deb.sh as `make package` does and returns the .deb.
func buildDeb(t *testing.T, version string) string {
	t.Helper()
	requireTool(t, "dpkg-deb", true)
	bin := buildBinary(t)
	out := t.TempDir()
	cmd := exec.Command("sh", "build-deb.sh", bin, version, out)
	// Compression is dpkg-deb's business and costs seconds of xz.
	cmd.Env = append(os.Environ(), "DEB_COMPRESSION=none")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, stderr.String())
	}
	deb := strings.TrimSpace(string(b))
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("build-deb.sh printed %q: %v", deb, err)
	}
	return deb
}

type debEntry struct {
	mode, owner, link string
}

// TestDebianPackageContentsAndPermissions checks every file of the .deb:
// owner, mode, and that the shipped config is private.
func TestDebianPackageContentsAndPermissions(t *testing.T) {
	t.Parallel()
	deb := buildDeb(t, "1.2.3")
	arch := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH]
	if arch != "" && filepath.Base(deb) != "fleutanbeat_1.2.3_"+arch+".deb" {
		t.Errorf("package file %s, want fleutanbeat_1.2.3_%s.deb", filepath.Base(deb), arch)
	}
	out, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]debEntry{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("unexpected dpkg-deb line %q", line)
		}
		e := debEntry{mode: f[0], owner: f[1]}
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if len(f) == 8 && f[6] == "->" {
			e.link = f[7]
		}
		got[path] = e
	}
	dir := debEntry{"drwxr-xr-x", "root/root", ""}
	want := map[string]debEntry{
		"":                                 dir,
		"/etc":                             dir,
		"/etc/fleutanbeat":                 dir,
		"/etc/fleutanbeat/fleutanbeat.yml": {"-rw-------", "root/root", ""},
		"/usr":                             dir,
		"/usr/bin":                         dir,
		"/usr/bin/fleutanbeat":             {"lrwxrwxrwx", "root/root", "../share/fleutanbeat/bin/fleutanbeat"},
		"/usr/lib":                         dir,
		"/usr/lib/systemd":                 dir,
		"/usr/lib/systemd/system":          dir,
		"/usr/lib/systemd/system/fleutanbeat.service": {"-rw-r--r--", "root/root", ""},
		"/usr/share":                 dir,
		"/usr/share/doc":             dir,
		"/usr/share/doc/fleutanbeat": dir,
		"/usr/share/doc/fleutanbeat/README.packaging.md": {"-rw-r--r--", "root/root", ""},
		"/usr/share/fleutanbeat":                         dir,
		"/usr/share/fleutanbeat/bin":                     dir,
		"/usr/share/fleutanbeat/bin/fleutanbeat":         {"-rwxr-xr-x", "root/root", ""},
		"/usr/share/fleutanbeat/kibana":                  dir,
	}
	// Every Kibana saved object of the repository is shipped (the NDJSON
	// bundles and their README, not the Go package around them).
	kib, err := filepath.Glob(filepath.Join(repoRoot(t), "kibana", "*.ndjson"))
	if err != nil || len(kib) == 0 {
		t.Fatalf("no saved objects under kibana/: %v", err)
	}
	kib = append(kib, filepath.Join(repoRoot(t), "kibana", "README.md"))
	for _, k := range kib {
		if st, err := os.Stat(k); err == nil && st.Mode().IsRegular() {
			want["/usr/share/fleutanbeat/kibana/"+filepath.Base(k)] = debEntry{"-rw-r--r--", "root/root", ""}
		}
	}
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("missing %s", p)
		} else if g != w {
			t.Errorf("%s: %+v, want %+v", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected %s in the package", p)
		}
	}

	// Control files: fields, conffiles and maintainer scripts that parse.
	ctrl := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "--control", deb, ctrl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --control: %v\n%s", err, out)
	}
	control, _ := os.ReadFile(filepath.Join(ctrl, "control"))
	for _, field := range []string{"Package: fleutanbeat\n", "Version: 1.2.3\n", "Depends: adduser\n", "Architecture: "} {
		if !bytes.Contains(control, []byte(field)) {
			t.Errorf("control lacks %q:\n%s", field, control)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(ctrl, "conffiles")); string(b) != "/etc/fleutanbeat/fleutanbeat.yml\n" {
		t.Errorf("conffiles = %q", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		p := filepath.Join(ctrl, s)
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, mode %v; want 0755", s, err, st)
			continue
		}
		if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("%s does not parse: %v\n%s", s, err, out)
		}
	}

	// The payload is what the repository has: the same config and unit,
	// and a static binary that runs.
	root := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "--extract", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --extract: %v\n%s", err, out)
	}
	for pkg, src := range map[string]string{
		"etc/fleutanbeat/fleutanbeat.yml":            filepath.Join(repoRoot(t), "fleutanbeat.yml"),
		"usr/lib/systemd/system/fleutanbeat.service": "fleutanbeat.service",
	} {
		a, _ := os.ReadFile(filepath.Join(root, pkg))
		b, _ := os.ReadFile(src)
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s", pkg, src)
		}
	}
	bin := filepath.Join(root, "usr/share/fleutanbeat/bin/fleutanbeat")
	checkStatic(t, bin)
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "fleutanbeat version ") {
		t.Errorf("packaged binary: version: %v %q", err, out)
	}
	// The packaged config is valid as shipped, permissions included.
	cfg := filepath.Join(root, "etc/fleutanbeat/fleutanbeat.yml")
	if out, err := exec.Command(bin, "test", "config", "-c", cfg, "--path.home", t.TempDir()).CombinedOutput(); err != nil {
		t.Errorf("packaged config: test config: %v\n%s", err, out)
	}
}

// TestDebianVersionFromGitDescribe checks that a version git describe
// gives without a tag still makes a valid Debian version.
func TestDebianVersionFromGitDescribe(t *testing.T) {
	t.Parallel()
	deb := buildDeb(t, "a1b2c3d-dirty")
	out, err := exec.Command("dpkg-deb", "--field", deb, "Version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "0.0.0~a1b2c3d-dirty" {
		t.Fatalf("Version = %q, want 0.0.0~a1b2c3d-dirty", got)
	}
}

// checkStatic fails unless path is an ELF executable with no program
// interpreter and no shared library: it runs in an image without libc.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	for _, p := range staticProblems(path) {
		t.Errorf("%s: %s", path, p)
	}
}

func staticProblems(path string) []string {
	f, err := elf.Open(path)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var out []string
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			out = append(out, "has a program interpreter")
		case elf.PT_DYNAMIC:
			out = append(out, "has a dynamic section")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		out = append(out, "needs shared libraries "+strings.Join(libs, ", "))
	}
	return out
}
