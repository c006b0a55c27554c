package qdisc

import (
	"errors"
	"fmt"
	"runtime"

	vns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// readXPSIn reads the XPS masks of devs, which live in the network
// namespace of nsPath. sysfs shows the devices of the namespace that
// mounted it (net/core/net-sysfs.c tags the class with it), so the read
// happens on a locked thread that takes a private mount namespace, joins
// the network namespace, mounts a fresh sysfs over sysRoot there, reads,
// and then returns to its original namespaces. The thread stays locked to
// the goroutine, which ends: the runtime then retires it (or, for the
// main thread, parks it), since it no longer shares its fs attributes
// (CLONE_FS) with the other threads.
func readXPSIn(nsPath, sysRoot string, devs []*Device) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- readXPSLocked(nsPath, sysRoot, devs)
	}()
	return <-done
}

func readXPSLocked(nsPath, sysRoot string, devs []*Device) (err error) {
	origNet, err := vns.Get()
	if err != nil {
		return fmt.Errorf("remember network namespace: %w", err)
	}
	defer origNet.Close()
	origMnt, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("remember mount namespace: %w", err)
	}
	defer unix.Close(origMnt)
	target, err := vns.GetFromPath(nsPath)
	if err != nil {
		return err
	}
	defer target.Close()

	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	defer func() {
		// The private mount namespace, and its sysfs mount, go away with
		// the last reference: the thread's.
		rerr := errors.Join(unix.Setns(origMnt, unix.CLONE_NEWNS), vns.Set(origNet))
		if rerr != nil {
			err = errors.Join(err, fmt.Errorf("restore namespaces: %w", rerr))
		}
	}()
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := vns.Set(target); err != nil {
		return fmt.Errorf("setns %s: %w", nsPath, err)
	}
	if err := unix.Mount("sysfs", sysRoot, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount sysfs: %w", err)
	}
	for _, d := range devs {
		d.XPS = readXPS(sysRoot, d.Name, d.TxQueues)
	}
	return nil
}
