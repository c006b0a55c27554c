//go:build !linux

package procindex

import "errors"

var errNotSupported = errors.New("procindex: socket owners are not supported on this OS")

// Index is a stub: Update fails on this OS.
type Index struct{}

// New returns an Index whose Update fails on this OS.
func New(opts Options) *Index { return &Index{} }

// Update fails: not supported on this OS.
func (x *Index) Update(live []uint32) (Stats, error) { return Stats{}, errNotSupported }

// Lookup finds nothing on this OS.
func (x *Index) Lookup(inode uint32) (*Process, bool) { return nil, false }

// Hint does nothing on this OS.
func (x *Index) Hint(pid int) {}

// Known is false on this OS.
func (x *Index) Known(inode uint32) bool { return false }

// PIDs is empty on this OS.
func (x *Index) PIDs() []int { return nil }

// Process finds nothing on this OS.
func (x *Index) Process(pid int, comm string) (*Process, bool) { return nil, false }
