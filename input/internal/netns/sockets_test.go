package netns

import (
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
