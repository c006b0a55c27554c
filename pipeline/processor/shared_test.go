package processor

import (
	"reflect"
	"testing"

	"github.com/fleutan/fleutanbeat/pipeline"
)

// TestSharedHostIsCopiedOnWrite: add_host_metadata hands every event the
// same host object; a later processor that writes into it must change only
// its own event.
func TestSharedHostIsCopiedOnWrite(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, changed, untouched pipeline.M)
	}{
		{"rename inside host", "- rename: {fields: [{from: host.name, to: host.alias}]}", func(t *testing.T, c, u pipeline.M) {
			if v, _ := c.GetValue("host.alias"); v != "web-1" {
				t.Errorf("renamed event host.alias = %v", v)
			}
			if _, ok := c.GetValue("host.name"); ok {
				t.Error("renamed event still has host.name")
			}
		}},
		{"drop a nested field", "- drop_fields: {fields: [host.os.kernel]}", func(t *testing.T, c, u pipeline.M) {
			if _, ok := c.GetValue("host.os.kernel"); ok {
				t.Error("host.os.kernel not dropped")
			}
		}},
		{"add_fields into host", "- add_fields: {target: host, fields: {rack: r7}}", func(t *testing.T, c, u pipeline.M) {
			if v, _ := c.GetValue("host.rack"); v != "r7" {
				t.Errorf("host.rack = %v", v)
			}
			if v, _ := c.GetValue("host.name"); v != "web-1" {
				t.Errorf("merge lost host.name: %v", v)
			}
		}},
		{"drop a missing nested field copies nothing", "- drop_fields: {fields: [host.nope], ignore_missing: true}", func(t *testing.T, c, u pipeline.M) {
			if _, shared := c["host"].(*pipeline.Shared); !shared {
				t.Error("a no-op delete made a private copy")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hp := mustNew(t, "- add_host_metadata: ~")[0]
			a, _ := hp.Run(&pipeline.Event{Fields: pipeline.M{}})
			b, _ := hp.Run(&pipeline.Event{Fields: pipeline.M{}})
			if a.Fields["host"] != b.Fields["host"] {
				t.Fatal("events do not share the host object")
			}
			before := b.Fields.Unshared()
			out, err := mustNew(t, tt.src)[0].Run(a)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b.Fields.Unshared(), before) {
				t.Fatalf("writing one event changed the other:\n%v\n%v", b.Fields.Unshared(), before)
			}
			tt.check(t, out.Fields, b.Fields)
		})
	}
}
