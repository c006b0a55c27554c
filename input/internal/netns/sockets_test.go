package netns

import (
	"context"
	"errors"
	"testing"
)

type fakeHandle struct{ closed *int }

func (h fakeHandle) Close() error { *h.closed++; return nil }

func TestSocketsOpenOnceRememberFailuresAndCloseGone(t *testing.T) {
	opened, closed := 0, 0
	fail := map[uint64]bool{3: true}
	s := NewSockets(func(ns Namespace) (fakeHandle, error) {
		opened++
		if fail[ns.Inode] {
			return fakeHandle{}, errors.New("setns: permission denied")
		}
		return fakeHandle{&closed}, nil
	})
	a, b, bad := Namespace{Inode: 1}, Namespace{Inode: 2}, Namespace{Inode: 3}
	for range 3 {
		if _, err := s.Get(a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(b); err != nil {
		t.Fatal(err)
	}
	if opened != 2 || s.Len() != 2 {
		t.Fatalf("opened %d, len %d; want 2 and 2", opened, s.Len())
	}
	if _, err := s.Get(bad); err == nil || errors.Is(err, ErrUnopenable) {
		t.Fatalf("first failure = %v, want the open error", err)
	}
	if _, err := s.Get(bad); !errors.Is(err, ErrUnopenable) {
		t.Fatalf("second failure = %v, want ErrUnopenable", err)
	}
	if opened != 3 {
		t.Fatalf("a failed namespace was opened again (%d opens)", opened)
	}
	s.Discard(b.Inode) // its dump broke
	if closed != 1 || s.Len() != 1 {
		t.Fatalf("after Discard: closed %d, len %d", closed, s.Len())
	}
	s.Keep(map[uint64]bool{b.Inode: true}) // a and bad are gone
	if closed != 2 || s.Len() != 0 {
		t.Fatalf("after Keep: closed %d, len %d", closed, s.Len())
	}
	fail[3] = false
	if _, err := s.Get(bad); err != nil {
		t.Fatalf("a namespace forgotten by Keep is opened again: %v", err)
	}
	if err := s.Close(); err != nil || closed != 3 || s.Len() != 0 {
		t.Fatalf("Close: %v, closed %d, len %d", err, closed, s.Len())
	}
}

func TestSocketsEachVisitsOncePerNamespaceAndFailsBrokenOnes(t *testing.T) {
	closed := 0
	s := NewSockets(func(ns Namespace) (fakeHandle, error) {
		if ns.Inode == 3 {
			return fakeHandle{}, errors.New("permission denied")
		}
		return fakeHandle{&closed}, nil
	})
	nss := []Namespace{{Inode: 1}, {Inode: 2}, {Inode: 1, Path: "dup"}, {Inode: 3}}
	var visited []uint64
	var unopened []uint64
	run := func() Visit {
		t.Helper()
		visited, unopened = nil, nil
		v, err := s.Each(context.Background(), nss, func(ns Namespace, _ error) { unopened = append(unopened, ns.Inode) },
			func(ns Namespace, _ fakeHandle) error {
				visited = append(visited, ns.Inode)
				if ns.Inode == 2 {
					return errors.New("dump broke")
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := run()
	if len(visited) != 2 || len(unopened) != 1 || !v.Failed[2] || !v.Failed[3] || v.Failed[1] || len(v.Present) != 3 {
		t.Fatalf("visited %v, unopened %v, visit %+v", visited, unopened, v)
	}
	if len(v.Errs) != 1 || v.Errs[0].Error() != "netns 2 (): dump broke" {
		t.Fatalf("errs %v", v.Errs)
	}
	if closed != 1 || s.Len() != 1 {
		t.Fatalf("the broken handle was not closed: closed %d, len %d", closed, s.Len())
	}
	run() // the unopenable namespace is not reported again
	if len(unopened) != 0 {
		t.Fatalf("unopenable namespace reported again: %v", unopened)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Each(ctx, nss, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Each after cancel: %v", err)
	}
}
