package config

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwner accepts files owned by root or by the effective user, as
// Beats' strict.perms does: anybody else owning the file could change what
// the agent runs.
func checkOwner(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	euid := os.Geteuid()
	if st.Uid == 0 || int(st.Uid) == euid {
		return nil
	}
	if euid == 0 {
		return &Error{File: path, Msg: fmt.Sprintf("file is owned by uid %d, not by root; run chown root %s or start with --strict.perms=false", st.Uid, path)}
	}
	return &Error{File: path, Msg: fmt.Sprintf("file is owned by uid %d, not by root or uid %d (the user running fleutanbeat); run chown %d %s or start with --strict.perms=false", st.Uid, euid, euid, path)}
}
