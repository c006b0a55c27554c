package nstest

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netns"
)

// Socket creates a socket (unix.AF_INET, unix.SOCK_DGRAM, ...) inside the
// namespace, without the test process leaving its own: a socket belongs to
// the namespace it was created in. The caller closes it.
func (n *Netns) Socket(t testing.TB, domain, typ int) int {
	t.Helper()
	fd := -1
	err := netns.Do(n.Path(), func() error {
		var err error
		fd, err = unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd) // created, but the thread did not come back
		}
		t.Fatalf("socket in netns %s: %v", n.Name, err)
	}
	return fd
}
