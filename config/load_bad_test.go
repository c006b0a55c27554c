package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/input/nstest"
)

// TestLoadRejectsBadConfigs pins the full text users see from
// `fleutanbeat test config` for each kind of mistake.
func TestLoadRejectsBadConfigs(t *testing.T) {
	const minimal = "testdata/good/minimal.yml"
	tests := []struct {
		name      string
		file      string // under testdata/bad unless it has a slash
		overrides []string
		env       map[string]string
		want      string
	}{
		{name: "unknown top-level key", file: "unknown_top_key.yml",
			want: "testdata/bad/unknown_top_key.yml:2:1: outptu: unknown key (known keys: fields, fields_under_root, fleutanbeat, http, logging, name, output, path, processors, queue, setup, shutdown_timeout, system, tags)"},
		{name: "unknown nested key", file: "unknown_nested_key.yml",
			want: "testdata/bad/unknown_nested_key.yml:6:3: output.file.pathh: unknown key (known keys: filename, number_of_files, path, permissions, rotate_every_kb)"},
		{name: "string for int", file: "string_for_int.yml",
			want: `testdata/bad/string_for_int.yml:4:13: queue.mem.events: "lots" is not an integer`},
		{name: "map for string", file: "map_for_string.yml",
			want: "testdata/bad/map_for_string.yml:3:3: name: expected a string, got a mapping"},
		{name: "list for map", file: "list_for_map.yml",
			want: "testdata/bad/list_for_map.yml:3:3: path: expected a mapping, got a list"},
		{name: "scalar for list", file: "tags_not_list.yml",
			want: "testdata/bad/tags_not_list.yml:2:7: tags: expected a list, got \"web\"\n" +
				"testdata/bad/tags_not_list.yml:5:19: shutdown_timeout: must not be negative"},
		{name: "bad duration in a list element", file: "bad_duration.yml",
			want: `testdata/bad/bad_duration.yml:3:13: fleutanbeat.inputs.0.period: "10 seconds" is not a duration (use a number with a unit: 500ms, 10s, 5m)`},
		{name: "bad byte size", file: "bad_bytesize.yml",
			want: `testdata/bad/bad_bytesize.yml:3:16: fleutanbeat.inputs.0.max_bytes: "10 megs" is not a byte size (use a whole number with an optional unit: 512B, 64KiB, 64MiB, 1GiB)`},
		{name: "negative for unsigned", file: "negative_uint.yml",
			want: `testdata/bad/negative_uint.yml:3:11: fleutanbeat.inputs.0.port: "-1" is out of range (0..65535)`},
		{name: "overflowing uint16", file: "overflow_uint16.yml",
			want: `testdata/bad/overflow_uint16.yml:3:11: fleutanbeat.inputs.0.port: "70000" is out of range (0..65535)`},
		{name: "overflowing int", file: "overflow_int.yml",
			want: `testdata/bad/overflow_int.yml:2:19: queue.mem.events: "99999999999999999999" is out of range (-9223372036854775808..9223372036854775807)`},
		{name: "misspelt bool", file: "bool_typo.yml",
			want: `testdata/bad/bool_typo.yml:2:12: output.file.enabled: "flase" is not a boolean (use true or false)`},
		{name: "all errors of one section at once", file: "many_errors.yml",
			want: "testdata/bad/many_errors.yml:2:19: queue.mem.events: \"many\" is not an integer\n" +
				"testdata/bad/many_errors.yml:3:26: queue.mem.flush.timeout: \"soon\" is not a duration (use a number with a unit: 500ms, 10s, 5m)\n" +
				"testdata/bad/many_errors.yml:4:1: queue.mem.size: unknown key (known keys: events, flush)"},
		{name: "two outputs enabled", file: "two_outputs.yml",
			want: "testdata/bad/two_outputs.yml:3:1: output.file: 2 outputs are enabled (output.console at line 1, output.file at line 3); keep one and set enabled: false on the others"},
		{name: "only output disabled", file: "zero_outputs.yml",
			want: "config: no output is enabled; enable exactly one of output.console, output.elasticsearch, output.file, output.logstash"},
		{name: "no output section", file: "no_output_section.yml",
			want: "config: no output is enabled; enable exactly one of output.console, output.elasticsearch, output.file, output.logstash"},
		{name: "unknown output", file: "unknown_output.yml",
			want: "testdata/bad/unknown_output.yml:2:3: output.kafka: unknown output (known outputs: console, elasticsearch, file, logstash)"},
		{name: "missing env var", file: "missing_env.yml",
			want: "testdata/bad/missing_env.yml:2:9: output.file.path: environment variable OUT_DIR is not set (set it or give a default: ${OUT_DIR:default})"},
		{name: "missing env var with message", file: "env_message.yml",
			want: "testdata/bad/env_message.yml:2:9: output.file.path: OUT_DIR: set OUT_DIR to the directory for event files"},
		{name: "bad variable references", file: "bad_var_ref.yml",
			want: "testdata/bad/bad_var_ref.yml:2:9: output.file.path: invalid variable reference ${OUT DIR} (names use letters, digits, _ and .)\n" +
				`testdata/bad/bad_var_ref.yml:3:13: output.file.filename: unclosed "${" (write $${ for a literal ${)`},
		{name: "bad indentation", file: "bad_indent.yml",
			want: "testdata/bad/bad_indent.yml:3:4: invalid YAML: mapping values are not allowed in this context (check the indentation of this line against the lines above)"},
		{name: "unclosed quote", file: "unclosed_quote.yml",
			want: "testdata/bad/unclosed_quote.yml:2:9: invalid YAML: found unexpected end of stream (this quote is never closed)"},
		{name: "unclosed single quote", file: "yaml_unclosed_single_quote.yml",
			want: "testdata/bad/yaml_unclosed_single_quote.yml:3:9: invalid YAML: found unexpected end of stream (this quote is never closed)"},
		{name: "unclosed bracket", file: "yaml_unclosed_bracket.yml",
			want: "testdata/bad/yaml_unclosed_bracket.yml:2:7: invalid YAML: did not find expected ',' or ']' (this bracket is never closed; the parser reported line 1)"},
		{name: "tab as indentation", file: "yaml_tab_indent.yml",
			want: "testdata/bad/yaml_tab_indent.yml:2:1: invalid YAML: found character that cannot start any token (YAML indents with spaces; a tab is not allowed here)"},
		{name: "tab inside a block", file: "yaml_tab_in_block.yml",
			want: "testdata/bad/yaml_tab_in_block.yml:4:1: invalid YAML: found a tab character that violates indentation (YAML indents with spaces; a tab is not allowed here; the parser reported line 3)"},
		{name: "list item indented by one space too many", file: "yaml_list_item_misindented.yml",
			want: "testdata/bad/yaml_list_item_misindented.yml:3:4: invalid YAML: did not find expected '-' indicator (check the indentation of this line against the lines above; the parser reported line 1)"},
		{name: "key dedented inside a mapping", file: "yaml_key_dedented.yml",
			want: "testdata/bad/yaml_key_dedented.yml:3:3: invalid YAML: did not find expected key (check the indentation of this line against the lines above; the parser reported line 2)"},
		{name: "list item after mapping keys", file: "yaml_list_after_mapping.yml",
			want: "testdata/bad/yaml_list_after_mapping.yml:3:3: invalid YAML: did not find expected key (check the indentation of this line against the lines above; the parser reported line 1)"},
		{name: "a valid multi-line string before the mistake", file: "yaml_multiline_string_then_bad_indent.yml",
			want: "testdata/bad/yaml_multiline_string_then_bad_indent.yml:5:4: invalid YAML: mapping values are not allowed in this context (check the indentation of this line against the lines above)"},
		{name: "key without colon", file: "yaml_missing_colon.yml",
			want: "testdata/bad/yaml_missing_colon.yml:2:1: invalid YAML: could not find expected ':' (a key needs a ':' after it)"},
		{name: "duplicate key", file: "duplicate_key.yml",
			want: "testdata/bad/duplicate_key.yml:3:3: output.file.path: duplicate key (also set at line 2)"},
		{name: "duplicate via dotted and nested spelling", file: "duplicate_dotted.yml",
			want: "testdata/bad/duplicate_dotted.yml:5:1: output.file.path: duplicate key (also set at line 3)"},
		{name: "empty part in dotted key", file: "empty_key_part.yml",
			want: `testdata/bad/empty_key_part.yml:1:1: "output..console" is not a valid key (use names separated by single dots)`},
		{name: "several documents", file: "multi_doc.yml",
			want: "testdata/bad/multi_doc.yml:2:1: a second YAML document starts here; keep one document per config file (remove the --- line)"},
		{name: "list at the top", file: "top_level_list.yml",
			want: "testdata/bad/top_level_list.yml:1:1: expected settings as key: value lines, got a list"},
		{name: "secret values are not echoed", file: "secret_wrong_type.yml",
			want: "testdata/bad/secret_wrong_type.yml:6:21: fleutanbeat.inputs.0.key_passphrase: <redacted> is not an integer\n" +
				"testdata/bad/secret_wrong_type.yml:7:14: fleutanbeat.inputs.0.api_key: expected a string, got a list"},
		{name: "secret with a bad reference is not echoed", file: "secret_bad_ref.yml",
			want: "testdata/bad/secret_bad_ref.yml:2:13: output.elasticsearch.password: invalid variable reference (names use letters, digits, _ and .)"},
		{name: "missing file", file: "does_not_exist.yml",
			want: "config: testdata/bad/does_not_exist.yml: cannot read the file: no such file or directory"},

		{name: "-E without =", file: minimal, overrides: []string{"queue.mem.events"},
			want: "config: -E queue.mem.events: expected key=value, for example -E output.file.path=/tmp/out"},
		{name: "-E without key", file: minimal, overrides: []string{"=5"},
			want: "config: -E =5: expected key=value, for example -E output.file.path=/tmp/out"},
		{name: "-E with invalid YAML", file: minimal, overrides: []string{"output.file.path=[unclosed"},
			want: "config: -E output.file.path=[unclosed: output.file.path: value is not valid YAML: line 1: did not find expected ',' or ']'"},
		{name: "-E with wrong type", file: minimal, overrides: []string{"queue.mem.events=lots"},
			want: `config: -E queue.mem.events=lots: queue.mem.events: "lots" is not an integer`},
		{name: "-E with wrong type in a list element", file: minimal, overrides: []string{"fleutanbeat.inputs.0.period=soon"},
			want: `config: -E fleutanbeat.inputs.0.period=soon: fleutanbeat.inputs.0.period: "soon" is not a duration (use a number with a unit: 500ms, 10s, 5m)`},
		{name: "-E with unknown key", file: minimal, overrides: []string{"output.file.pathh=x"},
			want: "config: -E output.file.pathh=x: output.file.pathh: unknown key (known keys: filename, number_of_files, path, permissions, rotate_every_kb)"},
		{name: "-E secret is not echoed", file: minimal, overrides: []string{"output.file.password=hunter2"},
			want: "config: -E output.file.password=<redacted>: output.file.password: unknown key (known keys: filename, number_of_files, path, permissions, rotate_every_kb)"},
		{name: "-E secret inside a mapping is not echoed", file: minimal, overrides: []string{"output.file={path: x, api_key: hunter2}"},
			want: "config: -E output.file=<redacted>: output.file.api_key: unknown key (known keys: filename, number_of_files, path, permissions, rotate_every_kb)"},
		{name: "-E list index out of range", file: minimal, overrides: []string{"fleutanbeat.inputs.3.period=5s"},
			want: "config: -E fleutanbeat.inputs.3.period=5s: fleutanbeat.inputs.3.period: fleutanbeat.inputs has 1 entries; use an index from 0 to 1 (1 appends)"},
		{name: "-E with missing env var", file: minimal, overrides: []string{"output.file.path=${NOPE}"},
			want: "config: -E output.file.path=${NOPE}: output.file.path: environment variable NOPE is not set (set it or give a default: ${NOPE:default})"},
		{name: "-E enabling a second output", file: minimal, overrides: []string{"output.console.enabled=true"},
			want: "config: -E output.console.enabled=true: output.console: 2 outputs are enabled (output.file at line 1, output.console by -E output.console.enabled=true); keep one and set enabled: false on the others"},
		{name: "-E unknown output", file: minimal, overrides: []string{"output.file.enabled=false", "output.kafka={}"},
			want: "config: -E output.kafka={}: output.kafka: unknown output (known outputs: console, elasticsearch, file, logstash)"},
		{name: "-E duplicate key in value", file: minimal, overrides: []string{"output.file={a: 1, a: 2}"},
			want: "config: -E output.file={a: 1, a: 2}: output.file.a: duplicate key"},
		{name: "-E several documents", file: minimal, overrides: []string{"output.file.path=a\n---\nb"},
			want: "config: -E output.file.path=a\n---\nb: output.file.path: value is not a single YAML value"},
		{name: "errors of several -E together", file: minimal, overrides: []string{"a..b=1", "x"},
			want: "config: -E a..b=1: \"a..b\" is not a valid key (use names separated by single dots)\n" +
				"config: -E x: expected key=value, for example -E output.file.path=/tmp/out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.file
			if !strings.Contains(path, "/") {
				path = filepath.Join("testdata/bad", path)
			}
			_, err := checkAll(LoadOptions{Path: path, Overrides: tt.overrides, Getenv: mapEnv(tt.env)})
			if err == nil {
				t.Fatalf("no error, want:\n%s", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			for _, secret := range []string{"hunter2", "s3cr3t", "ss w0rd"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error echoes the secret %q", secret)
				}
			}
			assertPositioned(t, err)
		})
	}
}

func TestLoadStrictPerms(t *testing.T) {
	data, err := os.ReadFile("testdata/good/minimal.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mode   os.FileMode
		strict bool
		want   string // "" means accepted
	}{
		{name: "world-writable refused", mode: 0o666, strict: true,
			want: "config: %[1]s: file is writable by group or others (mode 0666); run chmod go-w %[1]s or start with --strict.perms=false"},
		{name: "group-writable refused", mode: 0o664, strict: true,
			want: "config: %[1]s: file is writable by group or others (mode 0664); run chmod go-w %[1]s or start with --strict.perms=false"},
		{name: "world-writable accepted without strict perms", mode: 0o666, strict: false},
		{name: "owner-writable accepted", mode: 0o644, strict: true},
		{name: "read-only accepted", mode: 0o400, strict: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fleutanbeat.yml")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := checkAll(LoadOptions{Path: path, StrictPerms: tt.strict})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if want := strings.ReplaceAll(tt.want, "%[1]s", path); err == nil || err.Error() != want {
				t.Fatalf("got %v\nwant %s", err, want)
			}
			assertPositioned(t, err)
		})
	}
}

func TestLoadStrictPermsOwner(t *testing.T) {
	nstest.RequireRoot(t) // to chown the file to another user
	path := filepath.Join(t.TempDir(), "fleutanbeat.yml")
	if err := os.WriteFile(path, []byte("output.console: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	_, err := Load(LoadOptions{Path: path, StrictPerms: true})
	want := "config: " + path + ": file is owned by uid 1234, not by root; run chown root " + path + " or start with --strict.perms=false"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if _, err := Load(LoadOptions{Path: path, StrictPerms: false}); err != nil {
		t.Fatalf("refused without strict perms: %v", err)
	}
	if err := os.Chown(path, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(LoadOptions{Path: path, StrictPerms: true}); err != nil {
		t.Fatalf("refused a file owned by root: %v", err)
	}
}
