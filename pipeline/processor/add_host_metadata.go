package processor

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
)

// AddHostMetadataConfig is the add_host_metadata section.
type AddHostMetadataConfig struct {
	// Name overrides host.name (host.hostname stays the real one).
	Name string `yaml:"name"`
	// ReplaceFields replaces an existing host object; false leaves events
	// that already carry host.* (besides host.name) untouched.
	ReplaceFields bool `yaml:"replace_fields"`
	Cache         struct {
		TTL config.Duration `yaml:"ttl"`
	} `yaml:"cache"`
	NetInfo struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"netinfo"`
}

func DefaultAddHostMetadataConfig() AddHostMetadataConfig {
	c := AddHostMetadataConfig{ReplaceFields: true}
	c.Cache.TTL = config.Duration(5 * time.Minute)
	return c
}

func (c AddHostMetadataConfig) Validate() error {
	if c.Cache.TTL <= 0 {
		return config.Errorf("cache.ttl", "must be greater than 0, got %s", c.Cache.TTL.D())
	}
	return nil
}

type hostSnapshot struct {
	// host is shared by every event until the next refresh: events carry
	// the pointer and copy it only if a later processor writes into it.
	host    *pipeline.Shared
	expires time.Time
}

// addHostMetadata puts a precomputed host object (shared, copy on write) on
// each event and re-reads the host every cache.ttl.
type addHostMetadata struct {
	cfg AddHostMetadataConfig
	s   Settings
	now func() time.Time

	cur     atomic.Pointer[hostSnapshot]
	loading sync.Mutex
}

func newAddHostMetadata(cfg config.Raw, s Settings) (pipeline.Processor, error) {
	c := DefaultAddHostMetadataConfig()
	if err := cfg.DecodeValid(&c); err != nil {
		return nil, err
	}
	p := &addHostMetadata{cfg: c, s: s, now: time.Now}
	host, err := p.load()
	if err != nil {
		return nil, err
	}
	p.cur.Store(&hostSnapshot{host: pipeline.NewShared(host), expires: p.now().Add(c.Cache.TTL.D())})
	return p, nil
}

func (p *addHostMetadata) Run(e *pipeline.Event) (*pipeline.Event, error) {
	snap := p.cur.Load()
	if p.now().After(snap.expires) {
		snap = p.refresh(snap)
	}
	if e.Fields == nil {
		e.Fields = pipeline.M{}
	}
	if !p.cfg.ReplaceFields && hasHostFields(e.Fields) {
		return e, nil
	}
	e.Fields["host"] = snap.host
	return e, nil
}

// refresh re-reads the host once per expiry; concurrent callers keep using
// the old snapshot meanwhile. A failed read keeps the old data for another
// period rather than dropping host fields.
func (p *addHostMetadata) refresh(old *hostSnapshot) *hostSnapshot {
	if !p.loading.TryLock() {
		return old
	}
	defer p.loading.Unlock()
	if cur := p.cur.Load(); cur != old {
		return cur
	}
	next := &hostSnapshot{host: old.host, expires: p.now().Add(p.cfg.Cache.TTL.D())}
	if host, err := p.load(); err != nil {
		p.s.Logger.Warn("add_host_metadata: keeping previous host data", "error", err)
	} else {
		next.host = pipeline.NewShared(host)
	}
	p.cur.Store(next)
	return next
}

// hasHostFields reports whether an event carries host fields of its own;
// host.name alone does not count, as in Beats.
func hasHostFields(m pipeline.M) bool {
	h, ok := asM(m["host"])
	if !ok {
		return false
	}
	_, hasName := h["name"]
	return !(hasName && len(h) == 1)
}

// load reads the host's identity. Only a failing hostname is an error:
// the other files are missing on some systems and their fields are then
// left out.
func (p *addHostMetadata) load() (pipeline.M, error) {
	hostname, err := p.s.Hostname()
	if err != nil {
		return nil, fmt.Errorf("add_host_metadata: hostname: %w", err)
	}
	machine, release, err := uname()
	if err != nil {
		return nil, fmt.Errorf("add_host_metadata: uname: %w", err)
	}
	name := hostname
	if p.cfg.Name != "" {
		name = p.cfg.Name
	}
	host := pipeline.M{
		"name":          name,
		"hostname":      hostname,
		"architecture":  machine,
		"containerized": p.containerized(),
	}
	// machine-id(5): 32 lower-case hex digits and a newline.
	if id, err := os.ReadFile(p.path("etc/machine-id")); err == nil {
		if s := strings.TrimSpace(string(id)); s != "" {
			host["id"] = s
		}
	} else {
		p.s.Logger.Debug("add_host_metadata: no machine id", "error", err)
	}
	osm := pipeline.M{"type": "linux", "kernel": release}
	// /proc/sys/kernel/osrelease is uname's release; reading it under Root
	// lets a containerised agent report the host's kernel.
	if b, err := os.ReadFile(p.path("proc/sys/kernel/osrelease")); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			osm["kernel"] = s
		}
	}
	if rel, err := p.osRelease(); err == nil {
		for key, field := range map[string]string{"NAME": "name", "VERSION": "version", "ID": "platform", "VERSION_CODENAME": "codename"} {
			if v := rel[key]; v != "" {
				osm[field] = v
			}
		}
		if f := osFamily(rel); f != "" {
			osm["family"] = f
		}
	} else {
		p.s.Logger.Debug("add_host_metadata: no os-release", "error", err)
	}
	host["os"] = osm
	if p.cfg.NetInfo.Enabled {
		ips, macs, err := netInfo()
		if err != nil {
			return nil, fmt.Errorf("add_host_metadata: netinfo: %w", err)
		}
		if len(ips) > 0 {
			host["ip"] = ips
		}
		if len(macs) > 0 {
			host["mac"] = macs
		}
	}
	return host, nil
}

// osRelease reads /etc/os-release, falling back to /usr/lib/os-release as
// os-release(5) prescribes.
func (p *addHostMetadata) osRelease() (map[string]string, error) {
	var errs []error
	for _, name := range []string{"etc/os-release", "usr/lib/os-release"} {
		f, err := os.Open(p.path(name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rel, err := parseOSRelease(f)
		f.Close()
		return rel, err
	}
	return nil, errors.Join(errs...)
}

// containerized is true only on evidence: the marker files Docker and
// Podman create, or a cgroup path of PID 1 naming a container runtime.
func (p *addHostMetadata) containerized() bool {
	for _, marker := range []string{".dockerenv", "run/.containerenv"} {
		if _, err := os.Stat(p.path(marker)); err == nil {
			return true
		}
	}
	b, err := os.ReadFile(p.path("proc/1/cgroup"))
	if err != nil {
		return false
	}
	for _, rt := range [][]byte{[]byte("/docker"), []byte("/kubepods"), []byte("/containerd"), []byte("/lxc/"), []byte("libpod")} {
		if bytes.Contains(b, rt) {
			return true
		}
	}
	return false
}

func (p *addHostMetadata) path(rel string) string { return filepath.Join(p.s.Root, rel) }

// netInfo lists the addresses and MACs of interfaces that are up, except
// loopback, as Beats does. MACs use the ECS form 00-00-5E-00-53-23.
func netInfo() (ips, macs []string, err error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, nil, err
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		if len(ifc.HardwareAddr) > 0 {
			macs = append(macs, strings.ToUpper(strings.ReplaceAll(ifc.HardwareAddr.String(), ":", "-")))
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				ips = append(ips, n.IP.String())
			}
		}
	}
	return ips, macs, nil
}

func (p *addHostMetadata) String() string {
	return fmt.Sprintf("name=add_host_metadata, replace_fields=%t, cache.ttl=%s, netinfo.enabled=%t",
		p.cfg.ReplaceFields, p.cfg.Cache.TTL.D(), p.cfg.NetInfo.Enabled)
}
