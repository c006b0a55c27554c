package communityid

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/input/pyvenv"
)

// referenceVersion is the communityid package on PyPI that the spec names
// as its reference implementation, pinned in .ci/python-requirements.txt.
const referenceVersion = "1.5.0"

var refSeed = flag.Uint64("communityid.seed", 0, "seed of TestV1MatchesReferenceImplementation's random tuples (0: from the clock)")

// TestV1MatchesReferenceImplementation hashes random tuples with V1 and with
// the reference implementation and wants the same IDs: TCP, UDP and SCTP
// with random, equal and zero ports; ICMP and ICMPv6 with every type (so
// both mapping tables are covered, request/reply and one-way types alike)
// and random codes; every other protocol number without ports; IPv4 and
// IPv6, random, equal and neighbouring addresses; seeds 0, 1 and random.
func TestV1MatchesReferenceImplementation(t *testing.T) {
	py := pyvenv.Interpreter(t, "communityid")
	seed := *refSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("tuples from -communityid.seed=%d", seed)
	tuples := randomTuples(rand.New(rand.NewPCG(seed, 0x636964)))

	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for i := range tuples {
		if err := enc.Encode(&tuples[i]); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(py, "testdata/reference.py")
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference implementation: %v\n%s", err, stderr.Bytes())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() || sc.Text() != "communityid "+referenceVersion {
		t.Fatalf("reference implementation is %q, want communityid %s (see .ci/python-requirements.txt)", sc.Text(), referenceVersion)
	}
	var n, bad int
	for sc.Scan() {
		if n >= len(tuples) {
			t.Fatalf("reference implementation wrote more than %d ids", len(tuples))
		}
		v := &tuples[n]
		n++
		want := sc.Text()
		src := netip.AddrPortFrom(netip.MustParseAddr(v.SAddr), port(v.SPort))
		dst := netip.AddrPortFrom(netip.MustParseAddr(v.DAddr), port(v.DPort))
		got := V1(v.Seed, v.Proto, src, dst)
		if got == want {
			continue
		}
		if bad++; bad <= 20 {
			t.Errorf("seed=%d proto=%d %s -> %s: got %q, reference %q", v.Seed, v.Proto, fmtEnd(v.SAddr, v.SPort), fmtEnd(v.DAddr, v.DPort), got, want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(tuples) {
		t.Fatalf("reference implementation wrote %d ids for %d tuples", n, len(tuples))
	}
	if bad > 0 {
		t.Errorf("%d of %d tuples differ (rerun with -communityid.seed=%d)", bad, len(tuples), seed)
	}
}

func fmtEnd(addr string, p *uint16) string {
	if p == nil {
		return addr
	}
	return netip.AddrPortFrom(netip.MustParseAddr(addr), *p).String()
}

func randomTuples(r *rand.Rand) []vector {
	var out []vector
	add := func(proto uint8, v6 bool, sp, dp *uint16) {
		sa, da := addrPair(r, v6)
		out = append(out, vector{Seed: randSeed(r), Proto: proto, SAddr: sa.String(), DAddr: da.String(), SPort: sp, DPort: dp})
	}
	for _, proto := range []uint8{protoTCP, protoUDP, protoSCTP} {
		for i := range 4000 {
			sp, dp := randPorts(r)
			add(proto, i%2 == 1, &sp, &dp)
		}
	}
	// Every type, each with a random code, in both directions, over both
	// families: the one-way types keep their order, the paired ones must
	// meet their counterpart.
	for _, proto := range []uint8{protoICMP, protoICMPv6} {
		for typ := range uint16(256) {
			for i := range 8 {
				code := uint16(r.IntN(256))
				if i < 2 {
					code = 0
				}
				v6 := (proto == protoICMPv6) != (i == 7) // one in 8 over the other family
				add(proto, v6, &typ, &code)
			}
		}
	}
	for p := range 256 {
		proto := uint8(p)
		switch proto {
		case protoTCP, protoUDP, protoSCTP, protoICMP, protoICMPv6:
			continue
		}
		add(proto, false, nil, nil)
		add(proto, true, nil, nil)
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func randSeed(r *rand.Rand) uint16 {
	switch r.IntN(3) {
	case 0:
		return 0
	case 1:
		return 1
	}
	return uint16(r.Uint32())
}

// randPorts favours the cases the ordering rule decides on: equal ports
// (then the addresses decide) and zero.
func randPorts(r *rand.Rand) (uint16, uint16) {
	sp, dp := uint16(r.Uint32()), uint16(r.Uint32())
	switch r.IntN(10) {
	case 0:
		dp = sp
	case 1:
		sp = 0
	case 2:
		sp, dp = 0, 0
	}
	return sp, dp
}

// addrPair returns two addresses of one family: random, equal (so ports
// decide the order) or differing in the last byte only. IPv4-mapped IPv6
// addresses are left out: V1 unmaps them on purpose (see V1), the
// reference hashes their 16 bytes.
func addrPair(r *rand.Rand, v6 bool) (netip.Addr, netip.Addr) {
	a := randAddr(r, v6)
	switch r.IntN(10) {
	case 0:
		return a, a
	case 1:
		b := a.AsSlice()
		b[len(b)-1] ^= byte(1 + r.IntN(255))
		na, _ := netip.AddrFromSlice(b)
		return a, na
	}
	return a, randAddr(r, v6)
}

func randAddr(r *rand.Rand, v6 bool) netip.Addr {
	if !v6 {
		var b [4]byte
		putRand(r, b[:])
		return netip.AddrFrom4(b)
	}
	for {
		var b [16]byte
		putRand(r, b[:])
		if r.IntN(4) == 0 { // a shared prefix, as on one link
			copy(b[:8], []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1})
		}
		if a := netip.AddrFrom16(b); !a.Is4In6() {
			return a
		}
	}
}

func putRand(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}
