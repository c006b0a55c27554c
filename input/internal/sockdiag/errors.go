package sockdiag

import (
	"errors"
	"fmt"
	"syscall"
)

// DumpError is a dump the kernel refused or broke off. Callers tell a
// missing kernel handler (Unsupported) from other failures by it.
type DumpError struct {
	Family, Protocol uint8
	Netns            string // "" for the caller's namespace
	Err              error
}

func (e *DumpError) Error() string {
	where := ""
	if e.Netns != "" {
		where = " in netns " + e.Netns
	}
	return fmt.Sprintf("sockdiag: dump family %d protocol %d%s: %v", e.Family, e.Protocol, where, e.Err)
}

func (e *DumpError) Unwrap() error { return e.Err }

// Unsupported reports whether err is a dump the kernel has no handler for:
// sock_diag answers ENOENT when no module serves the family (inet_diag)
// or the protocol (tcp_diag, udp_diag, ...) and loading one failed, as it
// does without module autoloading or in a kernel built without them. The
// same request fails the same way every time until a module is loaded.
func Unsupported(err error) (*DumpError, bool) {
	var de *DumpError
	if errors.As(err, &de) && errors.Is(de.Err, syscall.ENOENT) {
		return de, true
	}
	return nil, false
}
