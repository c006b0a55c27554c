package netlink

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"unsafe"
)

const (
	rtmNewLink = 16 // RTM_NEWLINK, spelled out so these tests build on any OS
	ebusy      = syscall.EBUSY
	einval     = syscall.EINVAL
	emsgsize   = syscall.EMSGSIZE
	enobufs    = syscall.ENOBUFS
)

// msg is one netlink message, padded to 4 bytes like the kernel's.
func msg(typ, flags uint16, seq uint32, payload []byte) []byte {
	b := AppendHeader(nil, typ, flags, seq, len(payload))
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func errnoPayload(e syscall.Errno) []byte { return ne.AppendUint32(nil, uint32(-int32(e))) }

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// getlinkFixture is the kernel's reply to RTM_GETLINK (sequence 1) in a
// namespace with lo and a veth pair: three RTM_NEWLINK messages flagged
// NLM_F_MULTI, then NLMSG_DONE with status 0, 20 bytes. Captured by
// TestCaptureFixture.
func getlinkFixture(t testing.TB) []byte {
	t.Helper()
	if ne.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the fixture holds a little-endian host's netlink data")
	}
	b, err := os.ReadFile(filepath.Join("testdata", "getlink.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withDone replaces the fixture's NLMSG_DONE (its last 20 bytes).
func withDone(b []byte, flags uint16, status int32) []byte {
	b = bytes.Clone(b)
	done := b[len(b)-20:]
	ne.PutUint16(done[6:], flags)
	ne.PutUint32(done[16:], uint32(status))
	return b
}

type got struct {
	typ, flags uint16
	payload    string
}

func TestWalk(t *testing.T) {
	fx := getlinkFixture(t)
	var fxMsgs []got
	for off := 0; off < len(fx)-20; off += align4(int(ne.Uint32(fx[off:]))) {
		fxMsgs = append(fxMsgs, got{rtmNewLink, FlagMulti, string(fx[off+HdrLen : off+int(ne.Uint32(fx[off:]))])})
	}
	if len(fxMsgs) != 3 {
		t.Fatalf("fixture holds %d messages before NLMSG_DONE, want 3", len(fxMsgs))
	}
	done := msg(TypeDone, FlagMulti, 1, make([]byte, 4))
	data := msg(rtmNewLink, FlagMulti, 1, []byte("abcd"))
	dataMsg := got{rtmNewLink, FlagMulti, "abcd"}

	cases := []struct {
		name     string
		in       []byte
		seq      uint32
		want     []got
		wantDone bool
		wantErr  error // errors.Is; nil means no error
	}{
		{name: "kernel reply", in: fx, seq: 1, want: fxMsgs, wantDone: true},
		{name: "kernel reply, any sequence", in: fx, seq: 0, want: fxMsgs, wantDone: true},
		{name: "kernel reply of another sequence", in: fx, seq: 2},
		{name: "kernel reply without its end", in: fx[:len(fx)-20], seq: 1, want: fxMsgs},
		{name: "kernel reply cut in its end", in: fx[:len(fx)-1], seq: 1, want: fxMsgs, wantErr: ErrMalformed},
		{name: "kernel reply cut in a header", in: fx[:len(fx)-10], seq: 1, want: fxMsgs, wantErr: ErrMalformed},
		{name: "kernel reply cut in a message", in: fx[:100], seq: 1, wantErr: ErrMalformed},
		{name: "NLMSG_DONE flagged NLM_F_DUMP_INTR", in: withDone(fx, FlagMulti|FlagDumpIntr, 0), seq: 1, want: fxMsgs, wantDone: true, wantErr: ErrDumpInterrupted},
		{name: "NLMSG_DONE status -EMSGSIZE", in: withDone(fx, FlagMulti, -int32(emsgsize)), seq: 1, want: fxMsgs, wantDone: true, wantErr: emsgsize},
		{name: "NLMSG_DONE status -ENOBUFS says the dump is incomplete", in: withDone(fx, FlagMulti, -int32(enobufs)), seq: 1, want: fxMsgs, wantDone: true, wantErr: ErrDumpIncomplete},
		{name: "NLMSG_DONE with a positive status is a normal end", in: withDone(fx, FlagMulti, 7), seq: 1, want: fxMsgs, wantDone: true},
		{name: "NLMSG_DONE without a status", in: msg(TypeDone, FlagMulti, 1, nil), seq: 1, wantDone: true},
		{name: "NLMSG_ERROR carries the errno", in: cat(data, msg(TypeError, 0, 1, cat(errnoPayload(ebusy), make([]byte, 16)))), seq: 1, want: []got{dataMsg}, wantDone: true, wantErr: ebusy},
		{name: "NLMSG_ERROR 0 is an acknowledgement", in: msg(TypeError, 0, 1, make([]byte, 20)), seq: 1, wantDone: true},
		{name: "NLMSG_ERROR shorter than an errno", in: msg(TypeError, 0, 1, []byte{1, 2}), seq: 1, wantDone: true, wantErr: ErrMalformed},
		{name: "NLMSG_OVERRUN", in: cat(data, msg(TypeOverrun, 0, 1, nil)), seq: 1, want: []got{dataMsg}, wantDone: true, wantErr: ErrDumpIncomplete},
		{name: "NLM_F_DUMP_INTR on a message is reported at the end", in: cat(msg(rtmNewLink, FlagMulti|FlagDumpIntr, 1, []byte("abcd")), done), seq: 1,
			want: []got{{rtmNewLink, FlagMulti | FlagDumpIntr, "abcd"}}, wantDone: true, wantErr: ErrDumpInterrupted},
		{name: "NLM_F_DUMP_INTR of another sequence is not", in: cat(msg(rtmNewLink, FlagDumpIntr, 9, nil), done), seq: 1, wantDone: true},
		{name: "a kernel error wins over NLM_F_DUMP_INTR", in: cat(msg(rtmNewLink, FlagDumpIntr, 1, nil), msg(TypeDone, 0, 1, errnoPayload(einval))), seq: 1,
			want: []got{{rtmNewLink, FlagDumpIntr, ""}}, wantDone: true, wantErr: einval},
		{name: "other sequences are skipped, their end too", in: cat(msg(rtmNewLink, 0, 6, []byte("old!")), msg(TypeDone, 0, 6, nil), data, done), seq: 1, want: []got{dataMsg}, wantDone: true},
		{name: "nothing after the end is read", in: cat(done, data, []byte{1, 2, 3}), seq: 1, wantDone: true},
		{name: "NLMSG_NOOP and reserved types carry nothing", in: cat(msg(TypeNoop, 0, 1, nil), msg(5, 0, 1, []byte("x")), msg(TypeMin-1, 0, 1, nil), msg(TypeMin, 0, 1, nil), done), seq: 1,
			want: []got{{TypeMin, 0, ""}}, wantDone: true},
		{name: "the last message need not be padded", in: cat(data, msg(rtmNewLink, 0, 1, []byte("xyz"))[:HdrLen+3]), seq: 1, want: []got{dataMsg, {rtmNewLink, 0, "xyz"}}},
		{name: "a message is read up to its length, not its padding", in: cat(msg(rtmNewLink, 0, 1, []byte("xyz")), done), seq: 1, want: []got{{rtmNewLink, 0, "xyz"}}, wantDone: true},
		{name: "empty datagram"},
		{name: "trailing bytes shorter than a header", in: cat(data, []byte{1, 2, 3}), seq: 1, want: []got{dataMsg}, wantErr: ErrMalformed},
		{name: "length below the header", in: func() []byte { b := msg(rtmNewLink, 0, 1, nil); ne.PutUint32(b, 15); return b }(), seq: 1, wantErr: ErrMalformed},
		// The check qdisc's own framing had: 255 bytes claimed, 16 there.
		{name: "length beyond the datagram", in: []byte{0xff, 0, 0, 0, 0x24, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, seq: 1, wantErr: ErrMalformed},
		{name: "length beyond 2^31", in: func() []byte { b := msg(rtmNewLink, 0, 1, nil); ne.PutUint32(b, 1<<31+16); return b }(), seq: 1, wantErr: ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f Framer
			var msgs []got
			done, err := f.Walk(c.in, c.seq, func(typ, flags uint16, p []byte) error {
				msgs = append(msgs, got{typ, flags, string(p)})
				return nil
			})
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("err = %v, want %v", err, c.wantErr)
			}
			if done != c.wantDone || !slices.Equal(msgs, c.want) {
				t.Errorf("done %v after %d messages %+v, want %v after %d %+v", done, len(msgs), msgs, c.wantDone, len(c.want), c.want)
			}
			if f.Done() != done || f.Err() != err {
				t.Errorf("Done() %v Err() %v, Walk said %v %v", f.Done(), f.Err(), done, err)
			}

			// A nil callback finds the same end.
			var g Framer
			done2, err2 := g.Walk(c.in, c.seq, nil)
			if done2 != done || (err2 == nil) != (err == nil) || err2 != nil && err2.Error() != err.Error() {
				t.Errorf("without a callback: done %v err %v, with one %v %v", done2, err2, done, err)
			}
		})
	}
}

func TestWalkKernelErrorText(t *testing.T) {
	var f Framer
	_, err := f.Walk(msg(TypeError, 0, 1, errnoPayload(ebusy)), 1, nil)
	var ke *KernelError
	if !errors.As(err, &ke) || ke.Errno != ebusy || err.Error() != "kernel: "+ebusy.Error() {
		t.Errorf("NLMSG_ERROR -EBUSY = %v, want *KernelError %q", err, "kernel: "+ebusy.Error())
	}
	_, err = f.Walk(msg(TypeDone, 0, 1, errnoPayload(enobufs)), 1, nil)
	if want := "kernel: dump incomplete: " + enobufs.Error(); err == nil || err.Error() != want || !errors.Is(err, enobufs) {
		t.Errorf("NLMSG_DONE -ENOBUFS = %v, want %q", err, want)
	}
}

func TestWalkCallbackErrorStopsTheWalk(t *testing.T) {
	fx := getlinkFixture(t)
	stop := errors.New("stop")
	n := 0
	var f Framer
	done, err := f.Walk(fx, 1, func(uint16, uint16, []byte) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || done || n != 2 {
		t.Errorf("done %v err %v after %d calls, want false, the callback's error as is, 2", done, err, n)
	}
}

func TestFramerKeepsTheInterruptionAcrossDatagrams(t *testing.T) {
	var f Framer
	first := msg(rtmNewLink, FlagMulti|FlagDumpIntr, 3, nil)
	if done, err := f.Walk(first, 3, nil); done || err != nil {
		t.Fatalf("first datagram: done %v err %v", done, err)
	}
	if done, err := f.Walk(msg(TypeDone, FlagMulti, 3, make([]byte, 4)), 3, nil); !done || !errors.Is(err, ErrDumpInterrupted) {
		t.Fatalf("end in the second datagram: done %v err %v, want ErrDumpInterrupted", done, err)
	}
	// Reported once: the next dump on the same Framer starts clean.
	if done, err := f.Walk(msg(TypeDone, FlagMulti, 4, make([]byte, 4)), 4, nil); !done || err != nil {
		t.Errorf("next dump: done %v err %v, want a clean end", done, err)
	}
	// An end with an error forgets it too.
	_, _ = f.Walk(cat(first, msg(TypeError, 0, 3, errnoPayload(einval))), 3, nil)
	if done, err := f.Walk(msg(TypeDone, 0, 5, nil), 5, nil); !done || err != nil {
		t.Errorf("after an error end: done %v err %v, want a clean end", done, err)
	}
}

func TestFramerNext(t *testing.T) {
	fx := getlinkFixture(t)
	var f Framer
	f.Reset(fx, 1)
	n := 0
	for f.Next() {
		n++
		if f.Type != rtmNewLink || f.Flags != FlagMulti || len(f.Payload) < 16 {
			t.Errorf("message %d: type %d flags %#x payload %d bytes", n, f.Type, f.Flags, len(f.Payload))
		}
	}
	if n != 3 || !f.Done() || f.Err() != nil || f.Payload != nil {
		t.Errorf("%d messages, done %v, err %v, payload %v after the end", n, f.Done(), f.Err(), f.Payload)
	}
	if f.Next() {
		t.Error("Next goes on after the end")
	}
	f.Reset(fx[:len(fx)-20], 1)
	for f.Next() {
	}
	if f.Done() {
		t.Error("Reset kept the end of the previous datagram")
	}
}

func TestWalkAllocatesNothing(t *testing.T) {
	fx := getlinkFixture(t)
	var f Framer
	n := 0
	fn := func(uint16, uint16, []byte) error { n++; return nil }
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := f.Walk(fx, 1, fn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || n != 3*101 {
		t.Errorf("%.1f allocations per walk, %d messages; want 0 and %d", allocs, n, 3*101)
	}
}

// FuzzWalk checks that every message handed out is one that b holds, in
// order, of the sequence asked for, and that the walk ends as the data
// says.
func FuzzWalk(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "getlink.bin")); err == nil {
		// The fixture's first message cut to 64 bytes of payload, then its
		// end: small seeds keep the fuzzer's minimising of new inputs
		// short, which on the whole 4 KiB took most of a 20 s run.
		first := msg(ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:]), b[HdrLen:HdrLen+64])
		reply := cat(first, b[len(b)-20:])
		f.Add(reply, uint32(1))
		f.Add(withDone(reply, FlagMulti|FlagDumpIntr, -int32(emsgsize)), uint32(0))
	}
	f.Add(cat(msg(rtmNewLink, FlagDumpIntr, 2, []byte("abc")), msg(TypeError, 0, 2, errnoPayload(ebusy))), uint32(2))
	f.Add(cat(msg(TypeNoop, 0, 0, nil), msg(TypeOverrun, 0, 0, nil)), uint32(0))
	f.Fuzz(func(t *testing.T, in []byte, seq uint32) {
		// Spare capacity, so that an empty payload at the end still points
		// where it is (a slice of capacity 0 keeps its base pointer).
		b := append(make([]byte, 0, len(in)+HdrLen), in...)
		var fr Framer
		last := -1
		n := 0
		done, err := fr.Walk(b, seq, func(typ, flags uint16, p []byte) error {
			n++
			// The header sits right before the payload, inside b.
			off := int(uintptr(unsafe.Pointer(unsafe.SliceData(p))) - uintptr(unsafe.Pointer(unsafe.SliceData(b))) - HdrLen)
			if off < 0 || off%4 != 0 || off <= last || off+HdrLen+len(p) > len(b) {
				t.Fatalf("payload of %d bytes at offset %d (previous %d) in %d bytes", len(p), off+HdrLen, last, len(b))
			}
			last = off
			h := b[off:]
			if int(ne.Uint32(h)) != HdrLen+len(p) || ne.Uint16(h[4:]) != typ || ne.Uint16(h[6:]) != flags {
				t.Fatalf("message at %d: header % x, handed out type %d flags %#x, %d bytes", off, h[:HdrLen], typ, flags, len(p))
			}
			if seq != 0 && ne.Uint32(h[8:]) != seq {
				t.Fatalf("message of sequence %d handed out for %d", ne.Uint32(h[8:]), seq)
			}
			if typ < TypeMin {
				t.Fatalf("control message type %d handed out", typ)
			}
			return nil
		})
		if n > len(b)/HdrLen {
			t.Fatalf("%d messages from %d bytes", n, len(b))
		}
		if !done && err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("walk stopped before the end on %v, not on malformed data", err)
		}
		if !done && err == nil && seq == 0 {
			// b framed to its last byte without an end: it holds none.
			for off := 0; off < len(b); off += align4(int(ne.Uint32(b[off:]))) {
				if typ := ne.Uint16(b[off+4:]); typ >= TypeDone && typ <= TypeOverrun {
					t.Fatalf("end of type %d at %d missed", typ, off)
				}
			}
		}
		// The same walk again, on a fresh Framer, decides the same.
		var again Framer
		done2, err2 := again.Walk(b, seq, nil)
		if done2 != done || (err2 == nil) != (err == nil) {
			t.Fatalf("walk without a callback: done %v err %v; with one %v %v", done2, err2, done, err)
		}
	})
}
