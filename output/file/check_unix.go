//go:build unix

package file

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Check tells, creating nothing, whether Publish could write: the file, if
// it exists, is writable; else its nearest existing ancestor directory is.
func (w *writer) Check() error {
	p := w.path
	for {
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			parent := filepath.Dir(p)
			if parent == p {
				return fmt.Errorf("file output: %s: no existing ancestor directory", w.path)
			}
			p = parent
			continue
		}
		if err != nil {
			return fmt.Errorf("file output: %w", err)
		}
		if p == w.path && st.IsDir() {
			return fmt.Errorf("file output: %s is a directory", w.path)
		}
		if p != w.path && !st.IsDir() {
			return fmt.Errorf("file output: %s is not a directory", p)
		}
		mode := uint32(unix.W_OK)
		if st.IsDir() {
			mode |= unix.X_OK
		}
		if err := unix.Access(p, mode); err != nil {
			return fmt.Errorf("file output: %s is not writable: %w", p, err)
		}
		return nil
	}
}
