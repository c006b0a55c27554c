package procindex

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// BenchmarkProcfsVsOwn reads the same per-process files with
// prometheus/procfs and with the index's own readers in the same run: stat
// is read for every candidate pid during attribution (the hot path),
// details once per new owner process.
func BenchmarkProcfsVsOwn(b *testing.B) {
	for _, src := range []struct {
		name, root string
		pid        int
	}{
		{"fixture", filepath.Join("testdata", "proc"), 4242},
		{"live", "/proc", os.Getpid()},
	} {
		fs, err := procfs.NewFS(src.root)
		if err != nil {
			b.Fatal(err)
		}
		proc, err := fs.Proc(src.pid)
		if err != nil {
			b.Fatal(err)
		}
		x := New(Options{ProcRoot: src.root, EtcRoot: b.TempDir()})
		procfd, err := unix.Open(src.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { unix.Close(procfd) })
		ps, err := x.readStat(procfd, src.pid)
		if err != nil {
			b.Fatal(err)
		}
		ps.PID = src.pid
		cases := []struct {
			file     string
			own, lib func() error
		}{
			{"stat", func() error {
				_, err := x.readStat(procfd, src.pid)
				return err
			}, func() error {
				_, err := proc.Stat()
				return err
			}},
			{"details", func() error {
				x.details(procfd, ps)
				return nil
			}, func() error {
				x.procfsDetails(fs, ps)
				return nil
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

// procfsDetails is what details would be with procfs: the same three files.
func (x *Index) procfsDetails(fs procfs.FS, ps procStat) *Process {
	p := &Process{PID: ps.PID, PPID: ps.PPID, Name: ps.Comm, StartTime: ps.StartTime}
	proc, err := fs.Proc(ps.PID)
	if err != nil {
		return p
	}
	if st, err := proc.NewStatus(); err == nil {
		p.UID = uint32(st.UIDs[0])
		p.User = x.userName(p.UID)
	}
	if args, err := proc.CmdLine(); err == nil && len(args) > 0 {
		p.Args = args
	}
	if exe, err := proc.Executable(); err == nil {
		p.Executable = exe
	}
	return p
}
