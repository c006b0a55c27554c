package processor

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/pipeline"
	"gopkg.in/yaml.v3"
)

// parseList builds the processors list from YAML as the loader hands it.
func parseList(t testing.TB, src string) []config.Raw {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return config.NewRaw(doc.Content[0], "fleutanbeat.yml", "processors").List()
}

func testSettings() Settings {
	return Settings{Root: "testdata/root", Hostname: func() (string, error) { return "web-1", nil }}
}

func mustNew(t testing.TB, src string) []pipeline.Processor {
	t.Helper()
	ps, err := New(parseList(t, src), testSettings())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return ps
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown processor", "- add_host_metadata: ~\n- add_tags: {tags: [a]}",
			`fleutanbeat.yml:2:3: processors.1.add_tags: unknown processor "add_tags" (known: add_fields, add_host_metadata, drop_event, drop_fields, include_fields, rename)`},
		{"two names in one element", "- drop_event: ~\n  add_fields: {fields: {a: 1}}",
			"fleutanbeat.yml:1:3: processors.0: expected a single-key mapping such as `- add_host_metadata: ~` naming one processor"},
		{"element is a scalar", "- drop_event",
			"fleutanbeat.yml:1:3: processors.0: expected a single-key mapping such as `- add_host_metadata: ~` naming one processor"},
		{"bad condition", "- drop_event:\n    when:\n      network:\n        source.ip: 10.0.0.0/33",
			`fleutanbeat.yml:4:20: processors.0.drop_event.when.network.source.ip: "10.0.0.0/33" is not a CIDR or a named range (loopback, private, ...)`},
		{"drop_fields reserved", "- drop_fields:\n    fields: [process.args, \"@timestamp\", \"@metadata._id\"]",
			"fleutanbeat.yml:2:28: processors.0.drop_fields.fields.1: \"@timestamp\": @timestamp and @metadata are kept on every event and cannot be dropped\n" +
				`fleutanbeat.yml:2:42: processors.0.drop_fields.fields.2: "@metadata._id": @timestamp and @metadata are kept on every event and cannot be dropped`},
		{"drop_fields bad regexp", "- drop_fields: {fields: [\"/(/\"]}",
			"fleutanbeat.yml:1:26: processors.0.drop_fields.fields.0: \"/(/\" is not a valid regular expression: error parsing regexp: missing closing ): `(`"},
		{"drop_fields empty", "- drop_fields: ~",
			`fleutanbeat.yml:1:16: processors.0.drop_fields.fields: at least one field is required`},
		{"include_fields empty", "- include_fields: {fields: []}",
			`fleutanbeat.yml:1:28: processors.0.include_fields.fields: at least one field is required`},
		{"add_fields without fields", "- add_fields: {target: x}",
			`fleutanbeat.yml:1:15: processors.0.add_fields.fields: at least one field is required`},
		{"rename without to", "- rename:\n    fields:\n      - from: a\n      - {from: b, to: b}",
			"fleutanbeat.yml:3:9: processors.0.rename.fields.0.to: required\n" +
				`fleutanbeat.yml:4:23: processors.0.rename.fields.1.to: "b" is the same field as from`},
		{"add_host_metadata ttl", "- add_host_metadata: {cache: {ttl: 0s}}",
			`fleutanbeat.yml:1:36: processors.0.add_host_metadata.cache.ttl: must be greater than 0, got 0s`},
		{"errors of the list are joined", "- nope: ~\n- drop_fields: ~",
			"fleutanbeat.yml:1:3: processors.0.nope: unknown processor \"nope\" (known: add_fields, add_host_metadata, drop_event, drop_fields, include_fields, rename)\n" +
				`fleutanbeat.yml:2:16: processors.1.drop_fields.fields: at least one field is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(parseList(t, tt.src), testSettings())
			if err == nil {
				t.Fatal("New succeeded")
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}

func flow() pipeline.M {
	return pipeline.M{
		"network": pipeline.M{"transport": "tcp"},
		"source":  pipeline.M{"ip": netip.MustParseAddr("10.0.0.5"), "port": 40000},
		"process": pipeline.M{"name": "curl", "args": []string{"curl", "-s"}},
		"message": "x",
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		in      pipeline.M
		want    pipeline.M // nil: dropped
		wantErr string
	}{
		{"add_fields under fields by default", "- add_fields: {fields: {env: prod, team: {name: net}}}",
			pipeline.M{"a": 1},
			pipeline.M{"a": 1, "fields": pipeline.M{"env": "prod", "team": pipeline.M{"name": "net"}}}, ""},
		{"add_fields at the root merges and replaces", "- add_fields: {target: \"\", fields: {process: {title: x}, message: y}}",
			pipeline.M{"process": pipeline.M{"name": "curl"}, "message": "x"},
			pipeline.M{"process": pipeline.M{"name": "curl", "title": "x"}, "message": "y"}, ""},
		{"add_fields dotted target and keys", "- add_fields: {target: labels.k8s, fields: {pod.name: a, n: 1, l: [1, b]}}",
			pipeline.M{},
			pipeline.M{"labels": pipeline.M{"k8s": pipeline.M{"pod": pipeline.M{"name": "a"}, "n": 1, "l": []any{1, "b"}}}}, ""},
		{"drop_event without when drops all", "- drop_event: ~", flow(), nil, ""},
		{"drop_event when matching", "- drop_event: {when: {equals: {process.name: curl}}}", flow(), nil, ""},
		{"drop_event when not matching", "- drop_event: {when: {network: {source.ip: public}}}", flow(), flow(), ""},
		{"drop_fields", "- drop_fields: {fields: [process.args, message]}", flow(),
			pipeline.M{"network": pipeline.M{"transport": "tcp"}, "source": pipeline.M{"ip": netip.MustParseAddr("10.0.0.5"), "port": 40000}, "process": pipeline.M{"name": "curl"}}, ""},
		{"drop_fields missing is an error but the rest is dropped", "- drop_fields: {fields: [user.name, message, group]}", flow(),
			pipeline.M{"network": pipeline.M{"transport": "tcp"}, "source": pipeline.M{"ip": netip.MustParseAddr("10.0.0.5"), "port": 40000}, "process": pipeline.M{"name": "curl", "args": []string{"curl", "-s"}}},
			"drop_fields: field \"user.name\" not found\ndrop_fields: field \"group\" not found"},
		{"drop_fields ignore_missing", "- drop_fields: {fields: [user.name, message], ignore_missing: true}", pipeline.M{"message": "x", "a": 1}, pipeline.M{"a": 1}, ""},
		{"drop_fields regexp", "- drop_fields: {fields: [\"/^(source|process)\\\\.[ap]/\"]}", flow(),
			pipeline.M{"network": pipeline.M{"transport": "tcp"}, "source": pipeline.M{"ip": netip.MustParseAddr("10.0.0.5")}, "process": pipeline.M{"name": "curl"}, "message": "x"}, ""},
		{"include_fields", "- include_fields: {fields: [process.name, source, user]}", flow(),
			pipeline.M{"source": pipeline.M{"ip": netip.MustParseAddr("10.0.0.5"), "port": 40000}, "process": pipeline.M{"name": "curl"}}, ""},
		{"include_fields regexp", "- include_fields: {fields: [\"/^net/\"]}", flow(),
			pipeline.M{"network": pipeline.M{"transport": "tcp"}}, ""},
		{"rename", "- rename: {fields: [{from: process.name, to: process.title}, {from: message, to: event.original}]}", flow(),
			pipeline.M{"network": pipeline.M{"transport": "tcp"}, "source": pipeline.M{"ip": netip.MustParseAddr("10.0.0.5"), "port": 40000},
				"process": pipeline.M{"title": "curl", "args": []string{"curl", "-s"}}, "event": pipeline.M{"original": "x"}}, ""},
		{"rename failure restores the event", "- rename: {fields: [{from: message, to: event.original}, {from: process.name, to: process.args}]}", flow(),
			flow(), `rename: target field "process.args" already exists, drop or rename it first`},
		{"rename missing restores the event", "- rename: {fields: [{from: message, to: a.b.c}, {from: nope, to: x}]}", flow(),
			flow(), `rename: field "nope" not found`},
		{"rename through a scalar restores the event", "- rename: {fields: [{from: source.port, to: message.port}]}", flow(),
			flow(), `rename: cannot create "message.port": "message" is not an object`},
		{"rename ignore_missing", "- rename: {fields: [{from: nope, to: x}, {from: message, to: msg}], ignore_missing: true}", pipeline.M{"message": "x"},
			pipeline.M{"msg": "x"}, ""},
		{"rename without fail_on_error keeps going", "- rename: {fields: [{from: nope, to: x}, {from: message, to: msg}], fail_on_error: false}", pipeline.M{"message": "x"},
			pipeline.M{"msg": "x"}, ""},
		{"rename into its own child", "- rename: {fields: [{from: message, to: message.text}]}", pipeline.M{"message": "x"},
			pipeline.M{"message": pipeline.M{"text": "x"}}, ""},
		{"when gates any processor", "- add_fields: {fields: {a: 1}, when: {has_fields: [nope]}}", pipeline.M{"b": 2}, pipeline.M{"b": 2}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := mustNew(t, tt.src)
			if len(ps) != 1 {
				t.Fatalf("got %d processors", len(ps))
			}
			e := &pipeline.Event{Fields: tt.in}
			out, err := ps[0].Run(e)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Run: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("Run error = %v, want %s", err, tt.wantErr)
			}
			if tt.want == nil {
				if out != nil {
					t.Fatalf("event kept: %v", out.Fields)
				}
				return
			}
			if out == nil {
				t.Fatal("event dropped")
			}
			if !reflect.DeepEqual(out.Fields, tt.want) {
				t.Errorf("fields\n got: %#v\nwant: %#v", out.Fields, tt.want)
			}
		})
	}
}

func TestAddFieldsDoesNotShareMaps(t *testing.T) {
	p := mustNew(t, "- add_fields: {fields: {team: {name: net}}}")[0]
	a, _ := p.Run(&pipeline.Event{Fields: pipeline.M{}})
	b, _ := p.Run(&pipeline.Event{Fields: pipeline.M{}})
	a.Fields.Put("fields.team.name", "changed")
	if v, _ := b.Fields.GetValue("fields.team.name"); v != "net" {
		t.Fatalf("second event sees %v", v)
	}
}

func TestString(t *testing.T) {
	src := `
- add_host_metadata: {netinfo: {enabled: true}, cache: {ttl: 1m}}
- add_fields: {target: "", fields: {b: 1, a: {c: 2}}}
- drop_event: {when: {equals: {process.name: curl}}}
- drop_fields: {fields: [a, "/^b/"], ignore_missing: true}
- include_fields: {fields: [x]}
- rename: {fields: [{from: a, to: b}]}
`
	want := []string{
		"name=add_host_metadata, replace_fields=true, cache.ttl=1m0s, netinfo.enabled=true",
		`name=add_fields, target="", fields=[a.c, b]`,
		`name=drop_event, condition=equals(process.name: "curl")`,
		"name=drop_fields, fields=[a, /^b/], ignore_missing=true",
		"name=include_fields, fields=[x]",
		"name=rename, fields=[a->b], ignore_missing=false, fail_on_error=true",
	}
	for i, p := range mustNew(t, src) {
		if got := p.String(); got != want[i] {
			t.Errorf("String() = %s, want %s", got, want[i])
		}
	}
}

func TestNewWithoutProcessors(t *testing.T) {
	ps, err := New(nil, Settings{})
	if err != nil || len(ps) != 0 {
		t.Fatalf("New(nil) = %v, %v", ps, err)
	}
}

func TestHostnameFailureIsAnError(t *testing.T) {
	s := testSettings()
	s.Hostname = func() (string, error) { return "", errors.New("boom") }
	_, err := New(parseList(t, "- add_host_metadata: ~"), s)
	if err == nil || err.Error() != "add_host_metadata: hostname: boom" {
		t.Fatalf("error = %v", err)
	}
}

func TestOSReleaseQuoting(t *testing.T) {
	rel, err := parseOSRelease(strings.NewReader("A=\"x \\\"y\\\" \\$z\"\nB='q w'\nC=plain\n# D=no\nbroken\nE=\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": `x "y" $z`, "B": "q w", "C": "plain", "E": ""}
	if !reflect.DeepEqual(rel, want) {
		t.Fatalf("got %#v", rel)
	}
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add("NAME=\"Ubuntu\"\nID=ubuntu\n")
	f.Add("A='\nB=\"\\")
	f.Fuzz(func(t *testing.T, s string) {
		rel, _ := parseOSRelease(strings.NewReader(s))
		_ = osFamily(rel)
	})
}
