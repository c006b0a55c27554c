//go:build unix

package file

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFileModeIgnoresUmask changes the process umask, so it must not run
// in parallel with tests that create files.
func TestFileModeIgnoresUmask(t *testing.T) {
	cases := []struct {
		name  string
		extra string
		umask int
		want  os.FileMode
	}{
		{"default 0600", "", 0o022, 0o600},
		{"0664 under umask 022", "permissions: 0664\n", 0o022, 0o664},
		{"0644 under umask 077", "permissions: \"0644\"\n", 0o077, 0o644},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old := syscall.Umask(c.umask)
			defer syscall.Umask(old)
			dir := filepath.Join(t.TempDir(), "new")
			out := open(t, dir, "rotate_every_kb: 10\nnumber_of_files: 3\n"+c.extra)
			publish(t, out, events(0, 200, 100)) // rotates twice
			names := files(t, dir)
			if len(names) != 3 {
				t.Fatalf("files %v, want 3", names)
			}
			for _, name := range names {
				st, err := os.Stat(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != c.want {
					t.Errorf("%s: mode %#o, want %#o", name, st.Mode().Perm(), c.want)
				}
			}
			st, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if want := os.FileMode(0o750) &^ os.FileMode(c.umask); st.Mode().Perm() != want {
				t.Errorf("directory mode %#o, want %#o", st.Mode().Perm(), want)
			}
		})
	}
}

func TestExistingFileGetsConfiguredMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleutanbeat.ndjson")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	open(t, dir, "")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %#o, want 0600", st.Mode().Perm())
	}
}
