package procindex

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

var errMalformed = errors.New("malformed")

// procStat is what the index needs from /proc/PID/stat (proc_pid_stat(5)).
type procStat struct {
	PID       int // not parsed: the pid it was read for
	Comm      string
	PPID      int
	StartTime uint64
}

// parseStat parses /proc/PID/stat. comm is found between the first '(' and
// the last ')' because it may itself contain spaces and parentheses; the
// fields after it are counted from field 3 (state).
func parseStat(b []byte) (procStat, error) {
	open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return procStat{}, fmt.Errorf("stat: %w: no (comm)", errMalformed)
	}
	s := procStat{Comm: string(b[open+1 : closing])}
	rest := b[closing+1:]
	// field 4 is ppid, field 22 starttime (clock ticks since boot).
	for field := 3; field <= 22; field++ {
		rest = bytes.TrimLeft(rest, " ")
		end := bytes.IndexAny(rest, " \n")
		if end < 0 {
			end = len(rest)
		}
		if end == 0 {
			return procStat{}, fmt.Errorf("stat: %w: %d fields, want 22", errMalformed, field-1)
		}
		v := rest[:end]
		rest = rest[end:]
		var err error
		switch field {
		case 4:
			var n int64
			n, err = strconv.ParseInt(string(v), 10, 32)
			s.PPID = int(n)
		case 22:
			s.StartTime, err = strconv.ParseUint(string(v), 10, 64)
		}
		if err != nil {
			return procStat{}, fmt.Errorf("stat: field %d: %w: %q", field, errMalformed, v)
		}
	}
	return s, nil
}

// ParseStatusUID returns the real uid, the first of the four on the
// "Uid:" line of /proc/PID/status (proc_pid_status(5)). A missing or
// malformed line is an error, never uid 0 (procfs's Status reads a
// missing line as 0, which would name the process root). The cpu
// collector names its processes' uids with it too.
func ParseStatusUID(b []byte) (uint32, error) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		v, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(v)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseUint(string(f[0]), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("status: Uid: %w: %q", errMalformed, f[0])
		}
		return uint32(n), nil
	}
	return 0, fmt.Errorf("status: %w: no Uid line", errMalformed)
}

// parseCmdline splits /proc/PID/cmdline at NULs. Kernel threads have an
// empty cmdline (nil args); a process that rewrote its argv without NULs
// (setproctitle) yields one argument.
func parseCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	args := make([]string, 0, bytes.Count(b, []byte{0})+1)
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			i = len(b)
		}
		args = append(args, string(b[:i]))
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return args
}

// parseSocketLink reads the inode out of an fd link target "socket:[N]"
// (what sock_dname in net/socket.c prints). Other targets give false.
func parseSocketLink(b []byte) (uint32, bool) {
	v, ok := bytes.CutPrefix(b, []byte("socket:["))
	if !ok || len(v) < 2 || v[len(v)-1] != ']' {
		return 0, false
	}
	var n uint64
	for _, c := range v[:len(v)-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n > 1<<32-1 {
			return 0, false
		}
	}
	return uint32(n), true
}

// parsePasswd maps uids to user names from passwd(5) lines
// "name:password:uid:gid:gecos:home:shell". As getpwuid(3) does, the first
// entry for a uid wins; comments, NIS "+"/"-" entries and malformed lines
// are skipped.
func parsePasswd(r io.Reader) (map[uint32]string, error) {
	users := map[uint32]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			continue
		}
		_, rest, ok = bytes.Cut(rest, []byte(":"))
		if !ok {
			continue
		}
		uidField, _, ok := bytes.Cut(rest, []byte(":"))
		if !ok {
			continue
		}
		uid, err := strconv.ParseUint(string(uidField), 10, 32)
		if err != nil {
			continue
		}
		if _, dup := users[uint32(uid)]; !dup {
			users[uint32(uid)] = string(name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("passwd: %w", err)
	}
	return users, nil
}
