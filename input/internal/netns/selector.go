package netns

import "fmt"

// Selector decides which network namespaces a collector covers: its own
// (the default) or every one on the host. It caches the collector's own
// namespace, whose sockets need no setns(2). Not safe for concurrent use.
type Selector struct {
	ProcRoot string // "" = /proc
	RunDir   string // "" = DefaultRunDir
	All      bool   // every namespace instead of the own one
	// List, when set, replaces the discovery (tests point collectors at
	// namespaces they created).
	List func() ([]Namespace, error)

	self    Namespace
	hasSelf bool
}

// Namespaces returns the namespaces to collect in this period.
func (s *Selector) Namespaces() ([]Namespace, error) {
	if s.List != nil {
		nss, err := s.List()
		if err != nil {
			return nil, fmt.Errorf("list network namespaces: %w", err)
		}
		return nss, nil
	}
	if !s.hasSelf {
		self, err := Self(s.ProcRoot)
		if err != nil {
			return nil, fmt.Errorf("own network namespace: %w", err)
		}
		s.self, s.hasSelf = self, true
	}
	if !s.All {
		return []Namespace{s.self}, nil
	}
	nss, err := List(s.ProcRoot, s.RunDir)
	if err != nil {
		return nil, fmt.Errorf("list network namespaces: %w", err)
	}
	return nss, nil
}

// IsSelf reports whether ns is the caller's own namespace, where a socket
// can be opened directly.
func (s *Selector) IsSelf(ns Namespace) bool {
	if !s.hasSelf {
		if self, err := Self(s.ProcRoot); err == nil {
			s.self, s.hasSelf = self, true
		}
	}
	return s.hasSelf && s.self.Inode == ns.Inode
}
