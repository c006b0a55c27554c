package config

import (
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func load(t *testing.T, yml string, env map[string]string, overrides ...string) Raw {
	t.Helper()
	root, err := parseConfig([]byte(yml), "test.yml", overrides, mapEnv(env))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return root
}

func redacted(t *testing.T, root Raw) string {
	t.Helper()
	out, err := Redacted(root)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestLoadExpandsVariables(t *testing.T) {
	env := map[string]string{
		"PORT": "8080", "HOST": "db.local", "EMPTY": "", "ON": "true",
		"NESTED": "${NOT_EXPANDED}", "B": "from-b",
	}
	tests := []struct {
		name string
		expr string
		want any
	}{
		{name: "plain reference is retyped as int", expr: "${PORT}", want: 8080},
		{name: "plain reference is retyped as bool", expr: "${ON}", want: true},
		{name: "quoted reference stays a string", expr: `"${PORT}"`, want: "8080"},
		{name: "text around a reference", expr: "http://${HOST}:${PORT}/", want: "http://db.local:8080/"},
		{name: "default when unset", expr: "${MISSING:fallback}", want: "fallback"},
		{name: "default is retyped", expr: "${MISSING:42}", want: 42},
		{name: "default may hold colons", expr: "${MISSING:http://x:9200}", want: "http://x:9200"},
		{name: "set but empty wins over default", expr: "a${EMPTY:fallback}b", want: "ab"},
		{name: "nested default", expr: "${MISSING:${B:z}}", want: "from-b"},
		{name: "nested default of nested default", expr: "${MISSING:${ALSO_MISSING:z}}", want: "z"},
		{name: "escaped reference is literal", expr: "$${HOST}", want: "${HOST}"},
		{name: "escape next to a reference", expr: "$${HOST}-${HOST}", want: "${HOST}-db.local"},
		{name: "values are not expanded twice", expr: "${NESTED}", want: "${NOT_EXPANDED}"},
		{name: "lone dollars stay", expr: "a$b$$c", want: "a$b$$c"},
		{name: "set :? reference needs no message", expr: "${HOST:?never shown}", want: "db.local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := load(t, "v: "+tt.expr+"\n", env)
			v, _ := root.Child("v")
			var got any
			if err := v.Decode(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestLoadNestsDottedKeys(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want string
	}{
		{name: "dotted scalar", yml: "queue.mem.events: 10\n",
			want: "queue:\n  mem:\n    events: 10\n"},
		{name: "dotted key with mapping", yml: "output.file: {path: a}\n",
			want: "output:\n  file:\n    path: a\n"},
		{name: "dotted key with list", yml: "fleutanbeat.inputs:\n  - type: cpu\n",
			want: "fleutanbeat:\n  inputs:\n    - type: cpu\n"},
		{name: "nested and dotted spellings merge",
			yml:  "output:\n  file:\n    path: a\noutput.file.filename: b\n",
			want: "output:\n  file:\n    path: a\n    filename: b\n"},
		{name: "two dotted keys share a parent",
			yml:  "queue.mem.events: 1\nqueue.mem.flush.min_events: 2\n",
			want: "queue:\n  mem:\n    events: 1\n    flush:\n      min_events: 2\n"},
		{name: "dotted keys inside list elements",
			yml:  "l:\n  - a.b: 1\n    a.c: 2\n",
			want: "l:\n  - a:\n      b: 1\n      c: 2\n"},
		{name: "merge key fills what is not set",
			yml:  "base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n",
			want: "base:\n  x: 1\n  y: 2\nc:\n  y: 3\n  x: 1\n"},
		{name: "alias is copied", yml: "a: &x [1, 2]\nb: *x\n",
			want: "a:\n  - 1\n  - 2\nb:\n  - 1\n  - 2\n"},
		{name: "empty file", yml: "", want: "{}\n"},
		{name: "comments only", yml: "# nothing\n", want: "{}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redacted(t, load(t, tt.yml, nil)); got != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestLoadAppliesOverrides(t *testing.T) {
	const base = "output.file:\n  path: a\n  filename: f\nfleutanbeat.inputs:\n  - type: cpu\n"
	tests := []struct {
		name      string
		overrides []string
		want      string
	}{
		{name: "int value", overrides: []string{"queue.mem.events=10"},
			want: "output:\n  file:\n    path: a\n    filename: f\nfleutanbeat:\n  inputs:\n    - type: cpu\nqueue:\n  mem:\n    events: 10\n"},
		{name: "quoted string value", overrides: []string{`output.file.path="10"`},
			want: "output:\n  file:\n    path: \"10\"\n    filename: f\nfleutanbeat:\n  inputs:\n    - type: cpu\n"},
		{name: "replaces the whole subtree", overrides: []string{"output.file={path: b}"},
			want: "output:\n  file:\n    path: b\nfleutanbeat:\n  inputs:\n    - type: cpu\n"},
		{name: "later flag wins", overrides: []string{"output.file.path=b", "output.file.path=c"},
			want: "output:\n  file:\n    path: c\n    filename: f\nfleutanbeat:\n  inputs:\n    - type: cpu\n"},
		{name: "list element by index", overrides: []string{"fleutanbeat.inputs.0.period=5s"},
			want: "output:\n  file:\n    path: a\n    filename: f\nfleutanbeat:\n  inputs:\n    - type: cpu\n      period: 5s\n"},
		{name: "index past the end appends", overrides: []string{"fleutanbeat.inputs.1={type: flows}"},
			want: "output:\n  file:\n    path: a\n    filename: f\nfleutanbeat:\n  inputs:\n    - type: cpu\n    - type: flows\n"},
		{name: "dotted keys in the value", overrides: []string{"output={console.pretty: true}"},
			want: "output:\n  console:\n    pretty: true\nfleutanbeat:\n  inputs:\n    - type: cpu\n"},
		{name: "empty value is an empty string", overrides: []string{"name="},
			want: "output:\n  file:\n    path: a\n    filename: f\nfleutanbeat:\n  inputs:\n    - type: cpu\nname: \"\"\n"},
		{name: "variables expand in values", overrides: []string{"name=${HOST}"},
			want: "output:\n  file:\n    path: a\n    filename: f\nfleutanbeat:\n  inputs:\n    - type: cpu\nname: h1\n"},
		{name: "scalar replaced by a mapping", overrides: []string{"output.file.path.x=1"},
			want: "output:\n  file:\n    path:\n      x: 1\n    filename: f\nfleutanbeat:\n  inputs:\n    - type: cpu\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := load(t, base, map[string]string{"HOST": "h1"}, tt.overrides...)
			if got := redacted(t, root); got != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestParseDefaultsSurviveAbsentSections(t *testing.T) {
	root := load(t, "output.console: ~\nqueue.mem.flush.min_events: 7\n", nil)
	a, err := Parse(root, ParseOptions{KnownOutputs: testOutputs})
	if err != nil {
		t.Fatal(err)
	}
	if a.ShutdownTimeout.D() != 5*time.Second {
		t.Errorf("shutdown_timeout = %v, want 5s", a.ShutdownTimeout.D())
	}
	var q testQueue
	q.Mem.Events = 4096
	q.Mem.Flush.Timeout = Duration(time.Second)
	if err := a.Queue.Decode(&q); err != nil {
		t.Fatal(err)
	}
	if q.Mem.Events != 4096 || q.Mem.Flush.MinEvents != 7 || q.Mem.Flush.Timeout.D() != time.Second {
		t.Errorf("queue = %+v, want events 4096, min_events 7, timeout 1s", q.Mem)
	}
	if name, sec := a.ActiveOutput(); name != "console" || !sec.IsZero() {
		t.Errorf("active output = %q %v, want console with no settings", name, sec.Keys())
	}
	var untouched testQueue
	untouched.Mem.Events = 9
	if err := (Raw{}).Decode(&untouched); err != nil || untouched.Mem.Events != 9 {
		t.Errorf("absent section changed the defaults: %+v, %v", untouched, err)
	}
}

func TestParseBaseConfig(t *testing.T) {
	env := map[string]string{"PORT": "5044", "ES_PASSWORD": "hunter2"}
	a, err := checkAll(LoadOptions{Path: "testdata/good/base.yml", Getenv: mapEnv(env)})
	if err != nil {
		t.Fatal(err)
	}
	if name, sec := a.ActiveOutput(); name != "file" || strings.Join(sec.Keys(), ",") != "path,filename" {
		t.Errorf("active output = %q with keys %v, want file with path,filename", name, sec.Keys())
	}
	if got := strings.Join(a.Tags, ","); got != "edge,eu" {
		t.Errorf("tags = %q", got)
	}
	if a.Name != "${NOT_A_VAR}" || a.Path.Data != "./data" {
		t.Errorf("name = %q, path.data = %q", a.Name, a.Path.Data)
	}
	wantFields := map[string]any{"env": "prod", "owner": map[string]any{"team": "net"}}
	if !reflect.DeepEqual(a.Fields, wantFields) {
		t.Errorf("fields = %#v", a.Fields)
	}
	var cpu testInput
	if err := a.Inputs[1].Decode(&cpu); err != nil {
		t.Fatal(err)
	}
	if cpu.Port != 5044 || cpu.Period.D() != 30*time.Second || strings.Join(cpu.Hosts, ",") != "localhost:5044" {
		t.Errorf("cpu input = %+v", cpu)
	}
}

func TestRawPathsAndPositions(t *testing.T) {
	root, err := Load(LoadOptions{Path: "testdata/good/base.yml", Getenv: mapEnv(map[string]string{"PORT": "1", "ES_PASSWORD": "x"}),
		Overrides: []string{"fleutanbeat.inputs.1.period=1m"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse(root, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	period0, _ := a.Inputs[0].Child("period")
	period1, _ := a.Inputs[1].Child("period")
	proc := a.Inputs[0].List()
	if len(proc) != 0 {
		t.Errorf("a mapping has no list elements, got %d", len(proc))
	}
	procs, _ := a.Inputs[0].Child("processors")
	drop, _ := procs.List()[0].Child("drop_event")
	when := drop.Locate(Errorf("when.equals.process.name", "bad"))
	tests := []struct {
		name       string
		r          Raw
		path, file string
		line, col  int
	}{
		{"second input", a.Inputs[1], "fleutanbeat.inputs.1", "testdata/good/base.yml", 7, 5},
		{"period of first input", period0, "fleutanbeat.inputs.0.period", "testdata/good/base.yml", 4, 13},
		{"overridden period", period1, "fleutanbeat.inputs.1.period", "-E fleutanbeat.inputs.1.period=1m", 0, 0},
		{"processor in an input", procs.List()[0], "fleutanbeat.inputs.0.processors.0", "testdata/good/base.yml", 6, 9},
		{"global processor", a.Processors[0], "processors.0", "testdata/good/base.yml", 13, 5},
		{"dotted output", a.Output["file"], "output.file", "testdata/good/base.yml", 20, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.r.Path() != tt.path || tt.r.File() != tt.file || tt.r.line() != tt.line || tt.r.column() != tt.col {
				t.Errorf("got %s in %s at %d:%d, want %s in %s at %d:%d",
					tt.r.Path(), tt.r.File(), tt.r.line(), tt.r.column(), tt.path, tt.file, tt.line, tt.col)
			}
		})
	}
	if want := "testdata/good/base.yml:6:46: fleutanbeat.inputs.0.processors.0.drop_event.when.equals.process.name: bad"; when.Error() != want {
		t.Errorf("Locate: got %q, want %q", when, want)
	}
	if got, want := period1.Errorf("too short").Error(), "config: -E fleutanbeat.inputs.1.period=1m: fleutanbeat.inputs.1.period: too short"; got != want {
		t.Errorf("Errorf on an override: got %q, want %q", got, want)
	}
}

func TestActiveOutputDropsEnabled(t *testing.T) {
	root := load(t, "output.console: {enabled: false}\noutput.file:\n  enabled: true\n  path: x\n", nil)
	a, err := Parse(root, ParseOptions{KnownOutputs: testOutputs})
	if err != nil {
		t.Fatal(err)
	}
	name, sec := a.ActiveOutput()
	if name != "file" || strings.Join(sec.Keys(), ",") != "path" || sec.Path() != "output.file" {
		t.Fatalf("got %q %v at %q, want file [path] at output.file", name, sec.Keys(), sec.Path())
	}
	var c testFileOutput
	if err := sec.Decode(&c); err != nil || c.Path != "x" {
		t.Fatalf("decode: %+v %v", c, err)
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	env := map[string]string{"PORT": "5044", "ES_PASSWORD": "hunter2"}
	root, err := Load(LoadOptions{Path: "testdata/good/base.yml", Getenv: mapEnv(env),
		Overrides: []string{"output.logstash={enabled: false, client_secret: s3cr3t, API_KEY: k3y, refresh_token: t0k}"}})
	if err != nil {
		t.Fatal(err)
	}
	got := redacted(t, root)
	for _, s := range []string{"hunter2", "changeme", "s3cr3t", "k3y", "t0k"} {
		if strings.Contains(got, s) {
			t.Errorf("output shows the secret %q", s)
		}
	}
	const golden = "testdata/good/base.redacted.yml"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("got:\n%s\nwant (%s, -update to rewrite):\n%s", got, golden, want)
	}
}

func TestIsSecretKey(t *testing.T) {
	for key, want := range map[string]bool{
		"password": true, "PASSWORD": true, "passwd": true, "api_key": true, "token": true,
		"secret": true, "passphrase": true, "key_passphrase": true, "proxy_password": true,
		"Access_Token": true, "client_secret": true,
		"username": false, "key": false, "tokens": false, "secret_file": false, "path": false,
	} {
		if got := IsSecretKey(key); got != want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestRedactedMasksURLPasswords(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/c.yml"
	if err := os.WriteFile(p, []byte("output.logstash:\n  proxy_url: socks5://u:hunter2@proxy:1080\n  hosts: [\"http://plain:5044\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := Load(LoadOptions{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Redacted(root)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "hunter2") || !strings.Contains(string(b), "socks5://u:xxxxx@proxy:1080") || !strings.Contains(string(b), "http://plain:5044") {
		t.Fatalf("export:\n%s", b)
	}
}

func TestSecretFileKeysReadTheFile(t *testing.T) {
	dir := t.TempDir()
	secret := dir + "/pw"
	if err := os.WriteFile(secret, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := dir + "/open"
	if err := os.WriteFile(open, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := dir + "/c.yml"
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("output.elasticsearch:\n  username: u\n  password_file: " + secret + "\n")
	root, err := Load(LoadOptions{Path: cfg})
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := root.Child("output")
	pw, _ = pw.Child("elasticsearch")
	var got struct {
		Username string `yaml:"username"`
		Password string `yaml:"password"`
	}
	if err := pw.Decode(&got); err != nil || got.Password != "s3cr3t" {
		t.Fatalf("password = %q, err %v", got.Password, err)
	}
	if b, _ := Redacted(root); strings.Contains(string(b), "s3cr3t") || strings.Contains(string(b), "password_file") {
		t.Fatalf("export shows the secret or the file key:\n%s", b)
	}
	for _, tt := range []struct{ cfg, want string }{
		{"output.x:\n  api_key_file: " + open + "\n", "c.yml:2:17: output.x.api_key_file: " + open + " is accessible by others (mode 0644); run chmod o-rwx " + open},
		{"output.x:\n  password: a\n  password_file: " + secret + "\n", "c.yml:3:18: output.x.password_file: set either password or password_file, not both"},
		{"output.x:\n  password_file: " + dir + "/missing\n", "c.yml:2:18: output.x.password_file: cannot read " + dir + "/missing: no such file or directory"},
	} {
		write(tt.cfg)
		_, err := Load(LoadOptions{Path: cfg})
		if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
			t.Errorf("error %v, want suffix %q", err, tt.want)
		}
	}
}
