package processor

import (
	"reflect"
	"testing"
	"time"

	"github.com/fleutan/fleutanbeat/pipeline"
)

func wantHost(t *testing.T, name string) pipeline.M {
	t.Helper()
	machine, _, err := uname()
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.M{
		"name":          name,
		"hostname":      "web-1",
		"id":            "4c4c44440042381080b2c2c04f4c5a33",
		"architecture":  machine,
		"containerized": false,
		"os": pipeline.M{
			"type":     "linux",
			"family":   "debian",
			"name":     "Ubuntu",
			"version":  "22.04.3 LTS (Jammy Jellyfish)",
			"codename": "jammy",
			"platform": "ubuntu",
			"kernel":   "6.8.0-45-generic",
		},
	}
}

func TestAddHostMetadata(t *testing.T) {
	tests := []struct {
		name string
		src  string
		in   pipeline.M
		want func(t *testing.T) pipeline.M
	}{
		{"adds host from the fake root", "- add_host_metadata: ~", pipeline.M{"a": 1},
			func(t *testing.T) pipeline.M { return pipeline.M{"a": 1, "host": wantHost(t, "web-1")} }},
		{"configured name", "- add_host_metadata: {name: edge}", pipeline.M{},
			func(t *testing.T) pipeline.M { return pipeline.M{"host": wantHost(t, "edge")} }},
		{"replaces an existing host object", "- add_host_metadata: ~", pipeline.M{"host": pipeline.M{"ip": "1.2.3.4"}},
			func(t *testing.T) pipeline.M { return pipeline.M{"host": wantHost(t, "web-1")} }},
		{"replace_fields false keeps existing host fields", "- add_host_metadata: {replace_fields: false}", pipeline.M{"host": pipeline.M{"ip": "1.2.3.4"}},
			func(t *testing.T) pipeline.M { return pipeline.M{"host": pipeline.M{"ip": "1.2.3.4"}} }},
		{"replace_fields false still fills an event with only host.name", "- add_host_metadata: {replace_fields: false}", pipeline.M{"host": pipeline.M{"name": "x"}},
			func(t *testing.T) pipeline.M { return pipeline.M{"host": wantHost(t, "web-1")} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, tt.src)[0]
			out, err := p.Run(&pipeline.Event{Fields: tt.in})
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(t); !reflect.DeepEqual(out.Fields.Unshared(), want) {
				t.Errorf("fields\n got: %#v\nwant: %#v", out.Fields, want)
			}
		})
	}
}

func TestAddHostMetadataContainerAndFallbackOSRelease(t *testing.T) {
	s := testSettings()
	s.Root = "testdata/container"
	ps, err := New(parseList(t, "- add_host_metadata: ~"), s)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := ps[0].Run(&pipeline.Event{})
	_, release, _ := uname()
	for key, want := range map[string]any{
		"host.containerized": true,
		"host.os.family":     "redhat",
		"host.os.platform":   "rocky",
		"host.os.name":       "Rocky Linux",
		"host.os.version":    "9.3 (Blue Onyx)",
		"host.os.kernel":     release, // no proc/sys/kernel/osrelease under this root
	} {
		if got, _ := out.Fields.GetValue(key); got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	if _, ok := out.Fields.GetValue("host.id"); ok {
		t.Error("host.id set without a machine-id")
	}
}

func TestAddHostMetadataEventsDoNotShareMaps(t *testing.T) {
	p := mustNew(t, "- add_host_metadata: ~")[0]
	a, _ := p.Run(&pipeline.Event{Fields: pipeline.M{}})
	b, _ := p.Run(&pipeline.Event{Fields: pipeline.M{}})
	a.Fields.Put("host.os.name", "changed")
	a.Fields.Put("host.name", "changed")
	if v, _ := b.Fields.GetValue("host.os.name"); v != "Ubuntu" {
		t.Errorf("second event host.os.name = %v", v)
	}
	c, _ := p.Run(&pipeline.Event{Fields: pipeline.M{}})
	if v, _ := c.Fields.GetValue("host.name"); v != "web-1" {
		t.Errorf("third event host.name = %v", v)
	}
}

func TestAddHostMetadataRereadsAfterTTL(t *testing.T) {
	name := "web-1"
	s := testSettings()
	s.Hostname = func() (string, error) { return name, nil }
	ps, err := New(parseList(t, "- add_host_metadata: {cache: {ttl: 1m}}"), s)
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0].(*addHostMetadata)
	now := time.Now()
	p.now = func() time.Time { return now }
	name = "web-2"
	steps := []struct {
		advance time.Duration
		want    string
	}{{30 * time.Second, "web-1"}, {29 * time.Second, "web-1"}, {2 * time.Second, "web-2"}}
	for i, st := range steps {
		now = now.Add(st.advance)
		out, _ := p.Run(&pipeline.Event{})
		if got, _ := out.Fields.GetValue("host.hostname"); got != st.want {
			t.Errorf("step %d: host.hostname = %v, want %s", i, got, st.want)
		}
	}
}

func TestAddHostMetadataNetInfo(t *testing.T) {
	p := mustNew(t, "- add_host_metadata: {netinfo: {enabled: true}}")[0]
	out, err := p.Run(&pipeline.Event{})
	if err != nil {
		t.Fatal(err)
	}
	ips, macs, err := netInfo()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := out.Fields.GetValue("host.ip")
	if len(ips) > 0 && !reflect.DeepEqual(got, ips) {
		t.Errorf("host.ip = %v, want %v", got, ips)
	}
	got, _ = out.Fields.GetValue("host.mac")
	if len(macs) > 0 && !reflect.DeepEqual(got, macs) {
		t.Errorf("host.mac = %v, want %v", got, macs)
	}
	for _, ip := range ips {
		if ip == "127.0.0.1" || ip == "::1" {
			t.Errorf("loopback address %s listed", ip)
		}
	}
}
