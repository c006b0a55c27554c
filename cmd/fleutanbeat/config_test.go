package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .err golden files of testdata/badconfig")

// TestBadConfigs runs `test config` on every fixture in testdata/badconfig
// and compares stderr with its .err file: exit code 1 and every message
// with file, line, column and dotted key.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/badconfig/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("only %d bad configs; the suite promises at least 25", len(files))
	}
	home := t.TempDir()
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yml")
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main([]string{"test", "config", "-c", f, "--path.home", home, "--strict.perms=false"}, &stdout, &stderr)
			if code != exitConfig {
				t.Fatalf("exit code %d, want %d; stdout %q stderr %q", code, exitConfig, stdout.String(), stderr.String())
			}
			golden := strings.TrimSuffix(f, ".yml") + ".err"
			if *update {
				if err := os.WriteFile(golden, stderr.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestBadConfigs -update)", err)
			}
			if stderr.String() != string(want) {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
			}
		})
	}
}

// TestShippedConfigIsValid keeps fleutanbeat.yml parseable: it is the
// reference users copy from.
func TestShippedConfigIsValid(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main([]string{"test", "config", "-c", shippedConfig(t), "--path.home", t.TempDir()}, &stdout, &stderr)
	if code != exitOK || strings.TrimSpace(stdout.String()) != "Config OK" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// TestConfigFileWritableByOthersIsRefused follows Beats' strict.perms.
func TestConfigFileWritableByOthersIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("ownership rules differ for non-root; covered in config tests")
	}
	p := shippedConfig(t)
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"test", "config", "-c", p, "--path.home", t.TempDir()}, &stdout, &stderr); code != exitConfig {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "writable by group or others") {
		t.Errorf("stderr = %q", stderr.String())
	}
	stderr.Reset()
	if code := Main([]string{"test", "config", "-c", p, "--path.home", t.TempDir(), "--strict.perms=false"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("with --strict.perms=false: exit %d, stderr %q", code, stderr.String())
	}
}

// TestExportConfigRedactsSecrets: the effective config after -E overrides,
// secrets replaced.
func TestExportConfigRedactsSecrets(t *testing.T) {
	p := shippedConfig(t)
	t.Setenv("FBT_SECRET", "s3cr3t-value")
	var stdout, stderr bytes.Buffer
	code := Main([]string{"export", "config", "-c", p, "--path.home", t.TempDir(),
		"-E", "output.file.path=/tmp/fbt-export", "-E", "setup.kibana.password=${FBT_SECRET}",
		"-E", "setup.kibana.api_key=abc:def"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"path: /tmp/fbt-export", "password: <redacted>", "api_key: <redacted>", "type: flows"} {
		if !strings.Contains(out, want) {
			t.Errorf("export lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"s3cr3t-value", "abc:def"} {
		if strings.Contains(out, secret) {
			t.Errorf("export shows secret %q:\n%s", secret, out)
		}
	}
}

// TestShippedConfigOptionsParse uncomments every option and example of
// fleutanbeat.yml and checks that the result is a valid configuration, once
// per output: the reference must not document an option the agent refuses.
func TestShippedConfigOptionsParse(t *testing.T) {
	b, err := os.ReadFile("../../fleutanbeat.yml")
	if err != nil {
		t.Fatal(err)
	}
	text := uncommentOptions(string(b))
	p := filepath.Join(t.TempDir(), "all.yml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	outputs := regexp.MustCompile(`(?m)^output\.([a-z]+):`).FindAllStringSubmatch(text, -1)
	if len(outputs) < 3 {
		t.Fatalf("found %d output sections in the uncommented reference", len(outputs))
	}
	for _, o := range outputs {
		t.Run(o[1], func(t *testing.T) {
			args := []string{"test", "config", "-c", p, "--path.home", t.TempDir()}
			for _, other := range outputs {
				if other[1] != o[1] {
					args = append(args, "-E", "output."+other[1]+".enabled=false")
				}
			}
			var stdout, stderr bytes.Buffer
			if code := Main(args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d:\n%s\nuncommented file:\n%s", code, stderr.String(), text)
			}
		})
	}
}

var (
	commentedOption = regexp.MustCompile(`^(\s*)#(\s*)([a-z_][a-z0-9_.]*:.*|- .*)$`)
)

// uncommentOptions turns "#key: value" and "#  key: value" lines (options,
// not prose, which is "# text") back into YAML, keeping indentation.
func uncommentOptions(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		m := commentedOption.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if strings.HasPrefix(m[2], " ") && len(m[2]) == 1 {
			continue // "# word: ..." is prose that happens to have a colon
		}
		lines[i] = m[1] + m[2] + m[3]
	}
	return strings.Join(lines, "\n")
}
