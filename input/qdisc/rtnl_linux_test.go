package qdisc

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fleutan/fleutanbeat/input/internal/netlink"
	"github.com/fleutan/fleutanbeat/input/nstest"
)

// TestRtnlReportsTheDumpStatus: a dump whose callback fails in the kernel
// ends with NLMSG_DONE carrying the errno, which rtnl must not take for an
// empty answer.
func TestRtnlReportsTheDumpStatus(t *testing.T) {
	ns := nstest.New(t)
	r, err := openRtnlIn(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Under the strict checking openRtnlIn asks for,
	// rtnl_valid_dump_ifinfo_req refuses ifi_change in a dump request.
	var hdr [ifinfomsgLn]byte
	binary.NativeEndian.PutUint32(hdr[12:], 1)
	n := 0
	err = r.dump(unix.RTM_GETLINK, hdr[:], func(uint16, []byte) { n++ })
	var ke *netlink.KernelError
	if !errors.As(err, &ke) || ke.Errno != unix.EINVAL || n != 0 {
		t.Fatalf("refused link dump = %v after %d messages, want EINVAL from the kernel after 0", err, n)
	}
	var names []string
	if err := r.links(func(l linkMsg) { names = append(names, l.Name) }); err != nil || !slices.Equal(names, []string{"lo"}) {
		t.Errorf("next link dump: %v, %v; want [lo]", names, err)
	}
}
