package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds random YAML and -E flags through everything the agent does
// with a config. It must never panic, every error must be a *Error (alone
// or joined) with a real line wherever it names a key of the file, and an
// exported config must load back to the same export.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "queue.mem.events=10", "output.file.path=${HOME:x}")
	}
	f.Add([]byte("a: &a [*a]"), "a.0=1", "=")
	f.Add([]byte("a: &a {b: 1}\nc: {<<: *a, d.e: 2}\n"), "c.d={x: 1}", "c.<<=1")
	f.Add([]byte("x: ${A:${B:${C:?no}}}\n"), "x.1.2=3", "y=[1, {a: b}]")
	env := mapEnv(map[string]string{"A": "1", "HOME": "/root", "PW": "hunter2"})
	f.Fuzz(func(t *testing.T, data []byte, e1, e2 string) {
		const file = "fuzz.yml"
		root, err := parseConfig(data, file, []string{e1, e2}, env)
		if err != nil {
			checkFuzzError(t, err, file)
			return
		}
		a, err := Parse(root, ParseOptions{KnownOutputs: testOutputs})
		if err != nil {
			checkFuzzError(t, err, file)
		} else {
			var q testQueue
			checkFuzzError(t, a.Queue.Decode(&q), file)
			for _, in := range a.Inputs {
				var c testInput
				checkFuzzError(t, in.Decode(&c), file)
			}
			_, sec := a.ActiveOutput()
			var c testFileOutput
			checkFuzzError(t, sec.Decode(&c), file)
		}
		var any map[string]any
		checkFuzzError(t, root.Decode(&any), file)

		out, err := Redacted(root)
		if err != nil {
			t.Fatalf("Redacted: %v", err)
		}
		again, err := parseConfig(out, "export.yml", nil, mapEnv(nil))
		if err != nil {
			t.Fatalf("export does not load back: %v\n%s", err, out)
		}
		if out2, err := Redacted(again); err != nil || string(out2) != string(out) {
			t.Fatalf("export changes when loaded back (%v):\n%s\n---\n%s", err, out, out2)
		}
	})
}

func checkFuzzError(t *testing.T, err error, file string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, e := range flatten([]error{err}) {
		var ce *Error
		if !errors.As(e, &ce) || e != error(ce) {
			t.Fatalf("error %q is a %T, not a *config.Error", e, e)
		}
		if ce.Line < 0 || ce.Column < 0 {
			t.Fatalf("negative position in %q", ce)
		}
		if ce.File == file && ce.Key != "" && ce.Line == 0 {
			t.Fatalf("error about key %s of the file has no line: %q", ce.Key, ce)
		}
		if strings.HasPrefix(ce.File, "-E ") && ce.Line != 0 {
			t.Fatalf("error about a flag has a line: %q", ce)
		}
		if strings.Contains(ce.Error(), "hunter2") {
			t.Fatalf("error shows a secret: %q", ce)
		}
	}
}
