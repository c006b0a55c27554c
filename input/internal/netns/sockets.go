package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrUnopenable is what Sockets.Get returns for a namespace whose handle
// already failed to open, so that callers log the first failure only.
var ErrUnopenable = errors.New("netns: could not be opened before")

// Sockets keeps one handle per network namespace, typically a netlink
// socket created inside it: opened on first use, remembered when it cannot
// be opened, closed when it breaks or its namespace is gone. Not safe for
// concurrent use.
type Sockets[T io.Closer] struct {
	open       func(Namespace) (T, error)
	handles    map[uint64]T
	unopenable map[uint64]bool
}

// NewSockets returns an empty set that opens handles with open.
func NewSockets[T io.Closer](open func(Namespace) (T, error)) *Sockets[T] {
	return &Sockets[T]{open: open, handles: map[uint64]T{}, unopenable: map[uint64]bool{}}
}

// Get returns the handle of ns, opening it if needed. A namespace that
// failed before answers ErrUnopenable until Keep forgets it.
func (s *Sockets[T]) Get(ns Namespace) (T, error) {
	if h, ok := s.handles[ns.Inode]; ok {
		return h, nil
	}
	var zero T
	if s.unopenable[ns.Inode] {
		return zero, ErrUnopenable
	}
	h, err := s.open(ns)
	if err != nil {
		s.unopenable[ns.Inode] = true
		return zero, err
	}
	s.handles[ns.Inode] = h
	return h, nil
}

// Discard closes the handle of a namespace whose dump failed; the next Get
// opens a new one.
func (s *Sockets[T]) Discard(inode uint64) {
	if h, ok := s.handles[inode]; ok {
		_ = h.Close()
		delete(s.handles, inode)
	}
}

// Keep closes the handles, and forgets the failures, of namespaces not in
// present: they are gone, and a new one may reuse the inode.
func (s *Sockets[T]) Keep(present map[uint64]bool) {
	for ino, h := range s.handles {
		if !present[ino] {
			_ = h.Close()
			delete(s.handles, ino)
		}
	}
	for ino := range s.unopenable {
		if !present[ino] {
			delete(s.unopenable, ino)
		}
	}
}

// Close closes every handle; the set can be used again.
func (s *Sockets[T]) Close() error {
	var errs []error
	for ino, h := range s.handles {
		if err := h.Close(); err != nil {
			errs = append(errs, err)
		}
		delete(s.handles, ino)
	}
	return errors.Join(errs...)
}

// Len is the number of open handles.
func (s *Sockets[T]) Len() int { return len(s.handles) }

// Visit is the outcome of Sockets.Each: which namespaces were visited and
// which of them failed (could not be opened, or fn returned an error).
type Visit struct {
	Present, Failed map[uint64]bool
	Errs            []error // fn's errors, wrapped with the namespace
}

// Each calls fn once per distinct namespace of nss with its handle. A
// namespace whose handle cannot be opened is failed; unopened is called for
// its first failure only (to log it once). An error from fn fails the
// namespace and closes its handle, so the next period reopens it. Handles
// of namespaces not in nss are closed. Each stops early only when ctx ends.
func (s *Sockets[T]) Each(ctx context.Context, nss []Namespace, unopened func(Namespace, error), fn func(Namespace, T) error) (Visit, error) {
	v := Visit{Present: make(map[uint64]bool, len(nss)), Failed: map[uint64]bool{}}
	for _, ns := range nss {
		if err := ctx.Err(); err != nil {
			return v, err
		}
		if v.Present[ns.Inode] {
			continue
		}
		v.Present[ns.Inode] = true
		h, err := s.Get(ns)
		if err != nil {
			if !errors.Is(err, ErrUnopenable) {
				unopened(ns, err)
			}
			v.Failed[ns.Inode] = true
			continue
		}
		if err := fn(ns, h); err != nil {
			v.Failed[ns.Inode] = true
			v.Errs = append(v.Errs, fmt.Errorf("netns %d (%s): %w", ns.Inode, ns.Path, err))
			s.Discard(ns.Inode)
		}
	}
	s.Keep(v.Present)
	return v, nil
}
