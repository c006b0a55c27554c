package procindex

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestScenarios replays testdata/scenarios/*.txt: steps that change a fake
// /proc tree, Updates, and what each Update must have read and resolved.
// On a tree that is not procfs the index counts a process's fds by
// listing them, which is what st_size of /proc/PID/fd gives on Linux 6.2
// and later, so the same paths run as on a live system.
//
//	options full_scan_interval=N
//	proc PID COMM [ppid=N] [start=N] [uid=N]   (re)create a process, no fds
//	fd PID FD TARGET                           open (or replace) an fd
//	close PID FD
//	exit PID
//	unreadable PID                             its fd table cannot be read
//	hint PID
//	update INODE...                            Update with these live inodes
//	want FIELD=N...                            Stats of the last Update; the
//	                                           fields not named must be 0
//	owner INODE PID|- [COMM]                   Lookup
//	pids PID...                                PIDs
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) { runScenario(t, file) })
	}
}

func runScenario(t *testing.T, file string) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	root := t.TempDir()
	procRoot, etcRoot := filepath.Join(root, "proc"), filepath.Join(root, "etcroot")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(etcRoot, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(etcRoot, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(os.MkdirAll(filepath.Join(procRoot, "self"), 0o755))
	opts := Options{ProcRoot: procRoot, EtcRoot: etcRoot}
	var x *Index
	var stats Stats
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		w := strings.Fields(text)
		if len(w) == 0 {
			continue
		}
		where := fmt.Sprintf("%s:%d: %s", file, line, strings.TrimSpace(text))
		num := func(i int) int {
			t.Helper()
			if i >= len(w) {
				t.Fatalf("%s: want %d arguments", where, i)
			}
			n, err := strconv.Atoi(w[i])
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			return n
		}
		dir := func(i int) string { return filepath.Join(procRoot, strconv.Itoa(num(i))) }
		switch w[0] {
		case "options":
			for _, kv := range w[1:] {
				k, v, _ := strings.Cut(kv, "=")
				n, err := strconv.Atoi(v)
				if k != "full_scan_interval" || err != nil {
					t.Fatalf("%s: unknown option", where)
				}
				opts.FullScanInterval = n
			}
		case "proc":
			d := dir(1)
			kv := map[string]string{"ppid": "1", "start": "5000", "uid": "0"}
			for _, a := range w[3:] {
				k, v, _ := strings.Cut(a, "=")
				kv[k] = v
			}
			must(os.RemoveAll(d))
			must(os.MkdirAll(filepath.Join(d, "fd"), 0o755))
			stat := fmt.Sprintf("%d (%s) S %s 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %s 0 0\n", num(1), w[2], kv["ppid"], kv["start"])
			must(os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644))
			must(os.WriteFile(filepath.Join(d, "status"), []byte("Uid:\t"+kv["uid"]+"\t0\t0\t0\n"), 0o644))
			must(os.WriteFile(filepath.Join(d, "cmdline"), []byte(w[2]+"\x00"), 0o644))
		case "fd":
			link := filepath.Join(dir(1), "fd", strconv.Itoa(num(2)))
			_ = os.Remove(link)
			must(os.Symlink(w[3], link))
		case "close":
			must(os.Remove(filepath.Join(dir(1), "fd", strconv.Itoa(num(2)))))
		case "exit":
			must(os.RemoveAll(dir(1)))
		case "unreadable":
			d := filepath.Join(dir(1), "fd")
			must(os.RemoveAll(d))
			must(os.WriteFile(d, nil, 0o644)) // ENOTDIR, as a denied open is not ENOENT
		case "hint":
			if x == nil {
				x = New(opts)
			}
			x.Hint(num(1))
		case "update":
			if x == nil {
				x = New(opts)
			}
			var live []uint32
			for i := 1; i < len(w); i++ {
				live = append(live, uint32(num(i)))
			}
			if stats, err = x.Update(live); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		case "want":
			want := Stats{Processes: stats.Processes}
			v := reflect.ValueOf(&want).Elem()
			for _, a := range w[1:] {
				k, val, _ := strings.Cut(a, "=")
				field := v.FieldByNameFunc(func(name string) bool { return snake(name) == k })
				n, err := strconv.Atoi(val)
				if !field.IsValid() || err != nil {
					t.Fatalf("%s: %q is not a Stats field with a number", where, a)
				}
				field.SetInt(int64(n))
			}
			if stats != want {
				t.Errorf("%s:\n got %+v\nwant %+v", where, stats, want)
			}
		case "owner":
			p, ok := x.Lookup(uint32(num(1)))
			switch {
			case w[2] == "-" && ok:
				t.Errorf("%s: got pid %d", where, p.PID)
			case w[2] != "-" && (!ok || p.PID != num(2) || len(w) > 3 && p.Name != w[3]):
				t.Errorf("%s: got %+v, %v", where, p, ok)
			}
		case "pids":
			var want []int
			for i := 1; i < len(w); i++ {
				want = append(want, num(i))
			}
			if got := x.PIDs(); !slices.Equal(got, want) {
				t.Errorf("%s: got %v", where, got)
			}
		default:
			t.Fatalf("%s: unknown step", where)
		}
	}
	must(sc.Err())
}

// snake turns a Stats field name into the scenario's key: FDsRead → fds_read.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' && i > 0 && !(s[i-1] >= 'A' && s[i-1] <= 'Z') {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}
