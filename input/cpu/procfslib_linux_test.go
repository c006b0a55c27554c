package cpu

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/prometheus/procfs"

	"github.com/fleutan/fleutanbeat/input/process"
)

// procfsSource is one /proc tree both sides of a comparison read: the
// fixture tree under testdata/proc and the live /proc with this process.
type procfsSource struct {
	name, root string
	pid        int
}

func procfsSources() []procfsSource {
	return []procfsSource{
		{"fixture", filepath.Join("testdata", "proc"), 5677},
		{"live", "/proc", os.Getpid()},
	}
}

// BenchmarkProcfsVsOwn reads the same files with prometheus/procfs and with
// this package's parsers in the same run, so docs/ARCHITECTURE.md can say
// for each file which one the input uses and why. The own side opens and
// reads by path each time, which is what the library does; the sampler
// itself rereads held fds, so its real cost is lower still.
// /proc/PID/task/TID/sched (se.nr_migrations) has no procfs reader.
func BenchmarkProcfsVsOwn(b *testing.B) {
	for _, src := range procfsSources() {
		fs, err := procfs.NewFS(src.root)
		if err != nil {
			b.Fatal(err)
		}
		pid := src.pid
		dir := filepath.Join(src.root, strconv.Itoa(pid))
		task := filepath.Join(dir, "task", strconv.Itoa(pid))
		thread, err := fs.Thread(pid, pid)
		if err != nil {
			b.Fatal(err)
		}
		var buf []byte = make([]byte, 4096)
		var cores []coreTimes
		var sirqs []netSoftirqs
		cases := []struct {
			file     string
			own, lib func() error
		}{
			{"stat", func() error {
				b, err := os.ReadFile(filepath.Join(src.root, "stat"))
				if err == nil {
					cores, err = parseStat(b, cores[:0])
				}
				return err
			}, func() error {
				_, err := fs.Stat()
				return err
			}},
			{"softirqs", func() error {
				b, err := os.ReadFile(filepath.Join(src.root, "softirqs"))
				if err == nil {
					sirqs, err = parseSoftirqs(b, sirqs[:0])
				}
				return err
			}, func() error {
				_, err := fs.Softirqs()
				return err
			}},
			{"task_stat", func() error {
				b, err := readInto(filepath.Join(task, "stat"), &buf)
				if err == nil {
					_, err = parseTaskStat(b, false)
				}
				return err
			}, func() error {
				_, err := thread.Stat()
				return err
			}},
			{"task_schedstat", func() error {
				b, err := readInto(filepath.Join(task, "schedstat"), &buf)
				if err == nil {
					_, err = parseSchedstatRuntime(b)
				}
				return err
			}, func() error {
				_, err := thread.Schedstat()
				return err
			}},
			{"cmdline_exe", func() error {
				if _, err := os.Readlink(filepath.Join(dir, "exe")); err != nil {
					return err
				}
				_, err := readArgs(filepath.Join(dir, "cmdline"))
				return err
			}, func() error {
				proc, err := fs.Proc(pid)
				if err != nil {
					return err
				}
				if _, err := proc.Executable(); err != nil {
					return err
				}
				_, err = proc.CmdLine()
				return err
			}},
		}
		for _, c := range cases {
			for _, side := range []struct {
				name string
				fn   func() error
			}{{"own", c.own}, {"procfs", c.lib}} {
				b.Run(c.file+"/"+src.name+"/"+side.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := side.fn(); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// readArgs is how info read a command line before it used procfs: the
// own side of the cmdline_exe comparison.
func readArgs(path string) ([]string, error) {
	cmd, err := os.ReadFile(path)
	if err != nil || len(cmd) == 0 {
		return nil, err
	}
	var args []string
	for a := range bytes.SplitSeq(bytes.TrimSuffix(cmd, []byte{0}), []byte{0}) {
		args = append(args, string(a))
	}
	return args, nil
}

// TestInfoReadsFixtureTree checks how the collector names a process (exe
// and cmdline come from procfs) on the fixture tree: ProcRoot is
// respected and every field is the one the files hold.
func TestInfoReadsFixtureTree(t *testing.T) {
	c := &Collector{o: Options{ProcRoot: filepath.Join("testdata", "proc")}, acc: map[int]*procAcc{}, buf: make([]byte, 4096)}
	got, ok := c.account(5677)
	want := &process.Process{PID: 5677, PPID: 5673, Name: "cat", StartTime: 232494, UID: 1000,
		Executable: "/usr/bin/cat", Args: []string{"cat", "-n", "/etc/hosts"}}
	if !ok || !reflect.DeepEqual(got.proc, want) {
		t.Fatalf("got %+v, %v\nwant %+v", got, ok, want)
	}
	if _, ok := c.account(1); ok {
		t.Error("pid 1 is not in the fixture tree but info found it")
	}
}

// TestProcfsGapsKeepOwnParsers pins the two library behaviours that keep
// the own parsers for /proc/stat and /proc/softirqs (docs/ARCHITECTURE.md,
// "/proc readers"). If a procfs upgrade fails this test, revisit that
// decision.
func TestProcfsGapsKeepOwnParsers(t *testing.T) {
	root := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := procfs.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}

	// A truncated core line is an error for parseStat; procfs reads the
	// missing columns as zero, which would make the core look busy.
	write("stat", "cpu  1 2 3 4\ncpu0 1 2 3\n")
	if _, err := parseStat([]byte("cpu0 1 2 3\n"), nil); !errors.Is(err, errMalformed) {
		t.Fatalf("parseStat: %v, want errMalformed", err)
	}
	if st, err := fs.Stat(); err != nil || st.CPU[0].Idle != 0 || st.CPU[0].System != 0.03 {
		t.Errorf("procfs Stat on a truncated line: %+v, %v; the library now differs", st.CPU[0], err)
	}

	// Possible CPUs need not be contiguous: the header names them.
	// procfs keeps the rows by column and drops the header.
	write("softirqs", "  CPU0 CPU2\n NET_TX: 1 2\n NET_RX: 3 4\n")
	own, err := parseSoftirqs([]byte("  CPU0 CPU2\n NET_TX: 1 2\n NET_RX: 3 4\n"), nil)
	if err != nil || !reflect.DeepEqual(own, []netSoftirqs{{0, 3, 1}, {2, 4, 2}}) {
		t.Fatalf("parseSoftirqs: %+v, %v", own, err)
	}
	if s, err := fs.Softirqs(); err != nil || !reflect.DeepEqual(s.NetRx, []uint64{3, 4}) {
		t.Errorf("procfs Softirqs: %+v, %v; the library now differs", s, err)
	}
}
