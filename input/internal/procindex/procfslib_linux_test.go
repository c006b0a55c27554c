package procindex

import (
	"os"
	"path/filepath"
	"strconv"
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

// BenchmarkProcfsVsOwnFDTable lists one process's fd table and reads the
// socket inode of each fd, as the index's full scan does for every
// process: getdents and readlinkat into reused buffers against procfs's
// FileDescriptorTargets. Fixture: a tree of 1,000 "socket:[N]" links;
// live: this process holding 1,000 more UDP sockets.
func BenchmarkProcfsVsOwnFDTable(b *testing.B) {
	const sockets = 1000
	fixture := b.TempDir()
	if err := os.MkdirAll(filepath.Join(fixture, "4242", "fd"), 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range sockets {
		if err := os.Symlink("socket:["+strconv.Itoa(100000+i)+"]", filepath.Join(fixture, "4242", "fd", strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	for range sockets {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { unix.Close(fd) })
	}
	for _, src := range []struct {
		name, root string
		pid        int
	}{
		{"fixture", fixture, 4242},
		{"live", "/proc", os.Getpid()},
	} {
		fs, err := procfs.NewFS(src.root)
		if err != nil {
			b.Fatal(err)
		}
		x := New(Options{ProcRoot: src.root, EtcRoot: b.TempDir()})
		var inodes []uint32
		own := func() int {
			inodes = inodes[:0]
			dfd, err := unix.Open(filepath.Join(src.root, strconv.Itoa(src.pid), "fd"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(dfd)
			x.names = x.names[:0]
			_ = readDirents(dfd, x.dirBuf, func(name []byte) {
				if fd, ok := atoi(name); ok || (len(name) == 1 && name[0] == '0') {
					x.names = append(x.names, int32(fd))
				}
			})
			for _, fd := range x.names {
				if ino, ok := x.readFD(dfd, fd); ok && ino != 0 {
					inodes = append(inodes, ino)
				}
			}
			return len(inodes)
		}
		lib := func() int {
			inodes = inodes[:0]
			proc, err := fs.Proc(src.pid)
			if err != nil {
				b.Fatal(err)
			}
			targets, err := proc.FileDescriptorTargets()
			if err != nil {
				b.Fatal(err)
			}
			for _, t := range targets {
				if ino, ok := parseSocketLink([]byte(t)); ok {
					inodes = append(inodes, ino)
				}
			}
			return len(inodes)
		}
		for _, side := range []struct {
			name string
			fn   func() int
		}{{"own", own}, {"procfs", lib}} {
			b.Run("fd/"+src.name+"/"+side.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if n := side.fn(); n < sockets {
						b.Fatalf("%d socket fds, want at least %d", n, sockets)
					}
				}
			})
		}
	}
}
