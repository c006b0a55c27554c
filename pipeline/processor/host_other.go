//go:build !linux

package processor

import "errors"

func uname() (machine, release string, err error) {
	return "", "", errors.New("add_host_metadata: not supported on this OS")
}
