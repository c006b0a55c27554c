package processor

import "golang.org/x/sys/unix"

// uname returns the machine (architecture) and kernel release of uname(2).
func uname() (machine, release string, err error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", "", err
	}
	return unix.ByteSliceToString(u.Machine[:]), unix.ByteSliceToString(u.Release[:]), nil
}
