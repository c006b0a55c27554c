package netns_test

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

// rawDo is the hand-written switch Do used before it took
// vishvananda/netns: the same open, setns(2), call and setns back on a
// locked thread, with the library's handles replaced by bare descriptors.
func rawDo(nsPath string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ch <- func() error {
			target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(target)
			orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(orig)
			if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
				return err
			}
			ferr := fn()
			if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
				return err // the thread stays locked and is retired
			}
			runtime.UnlockOSThread()
			return ferr
		}()
	}()
	return <-ch
}

// BenchmarkDoVsRaw: Do on vishvananda/netns beside the bare syscalls, one
// round trip into a namespace the benchmark creates and back, as a
// collector does once per watched namespace and collection.
func BenchmarkDoVsRaw(b *testing.B) {
	ns := nstest.New(b)
	noop := func() error { return nil }
	for _, side := range []struct {
		name string
		do   func(string, func() error) error
	}{{"library", netns.Do}, {"raw", rawDo}} {
		b.Run(side.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := side.do(ns.Path(), noop); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
