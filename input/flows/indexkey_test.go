package flows

import (
	"net/netip"
	"testing"
	"unsafe"
)

// TestIndexKeyIsKey: two flows get the same indexKey exactly when they get
// the same Key, and the key has no padding, so the map can hash it as one
// block of memory.
func TestIndexKeyIsKey(t *testing.T) {
	base := Flow{Netns: 4026531840, Protocol: protoTCP, Inode: 77,
		Local: netip.MustParseAddrPort("10.0.0.1:80"), Remote: netip.MustParseAddrPort("10.0.0.2:4000")}
	variants := map[string]func(*Flow){
		"same":           func(*Flow) {},
		"netns":          func(f *Flow) { f.Netns++ },
		"protocol":       func(f *Flow) { f.Protocol = protoUDP },
		"inode":          func(f *Flow) { f.Inode++ },
		"local port":     func(f *Flow) { f.Local = netip.AddrPortFrom(f.Local.Addr(), 81) },
		"remote port":    func(f *Flow) { f.Remote = netip.AddrPortFrom(f.Remote.Addr(), 4001) },
		"local address":  func(f *Flow) { f.Local = netip.MustParseAddrPort("10.0.0.3:80") },
		"v4-mapped":      func(f *Flow) { f.Local = netip.MustParseAddrPort("[::ffff:10.0.0.1]:80") },
		"remote v4-map":  func(f *Flow) { f.Remote = netip.MustParseAddrPort("[::ffff:10.0.0.2]:4000") },
		"no remote":      func(f *Flow) { f.Remote = netip.AddrPort{} },
		"zero remote v6": func(f *Flow) { f.Remote = netip.MustParseAddrPort("[::]:0") },
	}
	for name, change := range variants {
		f := base
		change(&f)
		if sameKey, sameIndex := f.Key() == base.Key(), f.indexKey() == base.indexKey(); sameKey != sameIndex {
			t.Errorf("%s: Key equal %v, indexKey equal %v", name, sameKey, sameIndex)
		}
	}
	var k indexKey
	if got, want := unsafe.Sizeof(k), unsafe.Sizeof(k.netns)+2*unsafe.Sizeof(k.local)+unsafe.Sizeof(k.inode)+2*unsafe.Sizeof(k.lport)+unsafe.Sizeof(k.proto); got != want {
		t.Errorf("indexKey is %d bytes, its fields %d: padding", got, want)
	}
}
