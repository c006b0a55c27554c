package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadOptions says where the config comes from; the program, not the
// config file, provides them.
type LoadOptions struct {
	// Path is the config file, named in errors as given.
	Path string
	// Overrides are the -E key=value flags in command-line order; later
	// ones win.
	Overrides []string
	// Getenv looks up ${VAR} references; nil means os.LookupEnv.
	Getenv func(string) (string, bool)
	// StrictPerms refuses a file that others could have written, as Beats'
	// --strict.perms does: the config decides what runs as root.
	StrictPerms bool
}

// maxFileSize keeps a wrong -c (a log, a disk image) from being read whole.
const maxFileSize = 16 << 20

// Load reads, expands and merges the config and returns its root section
// (path ""). Every error is an *Error or several of them joined.
func Load(opts LoadOptions) (Raw, error) {
	data, err := readFile(opts.Path, opts.StrictPerms)
	if err != nil {
		return Raw{}, err
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	return parseConfig(data, opts.Path, opts.Overrides, getenv)
}

func readFile(path string, strictPerms bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read the file: " + pathErrText(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read the file: " + pathErrText(err)}
	}
	if fi.IsDir() {
		return nil, &Error{File: path, Msg: "is a directory, not a config file"}
	}
	if strictPerms {
		if err := checkPerms(path, fi); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read the file: " + pathErrText(err)}
	}
	if len(data) > maxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("file is larger than %d MiB; is it really the config?", maxFileSize>>20)}
	}
	return data, nil
}

func pathErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// checkPerms refuses a config file that users other than its owner may
// change, and one owned by anybody but root or us.
func checkPerms(path string, fi fs.FileInfo) error {
	if mode := fi.Mode().Perm(); mode&0o022 != 0 {
		return &Error{File: path, Msg: fmt.Sprintf("file is writable by group or others (mode %04o); run chmod go-w %s or start with --strict.perms=false", mode, path)}
	}
	return checkOwner(path, fi)
}

// parseConfig is Load after reading: parse, expand ${VAR}, nest dotted
// keys, apply -E overrides.
func parseConfig(data []byte, file string, overrides []string, getenv func(string) (string, bool)) (Raw, error) {
	root, err := parseDocument(data, file)
	if err != nil {
		return Raw{}, err
	}
	src := &origins{base: file, files: map[*yaml.Node]string{}}
	ex := &expander{getenv: getenv}
	ex.walk(Raw{node: root, file: file, src: src}, 0)
	z := &normalizer{file: file}
	root = z.node(root, "", 0)
	errs := append(ex.errs, z.errs...)
	for _, o := range overrides {
		if err := applyOverride(root, o, getenv, src); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = readSecretFiles(Raw{node: root, file: file, src: src}, 0)
	}
	if len(errs) > 0 {
		return Raw{}, joinErrors(flatten(errs))
	}
	return Raw{node: root, file: file, src: src}, nil
}

func flatten(errs []error) []error {
	var out []error
	for _, err := range errs {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			out = append(out, flatten(j.Unwrap())...)
			continue
		}
		out = append(out, err)
	}
	return out
}

// parseDocument parses exactly one YAML document whose top is a mapping
// and returns a copy with aliases expanded.
func parseDocument(data []byte, file string) (root *yaml.Node, err error) {
	defer func() {
		// The parser is not ours; a panic on hostile bytes must still end
		// as a config error, not a crash.
		if p := recover(); p != nil {
			root, err = nil, &Error{File: file, Msg: fmt.Sprintf("invalid YAML: parser failed: %v", p)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}, nil
		}
		return nil, syntaxError(file, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{File: file, Line: max(next.Line, 1), Column: next.Column, Msg: "a second YAML document starts here; keep one document per config file (remove the --- line)"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(file, data, err)
	}
	c := &copier{file: file}
	top := doc.Content[0]
	if top == nil || (top.Kind == yaml.ScalarNode && top.ShortTag() == "!!null") {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}, nil
	}
	root = c.copy(top, 0)
	if c.err != nil {
		return nil, c.err
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Column: root.Column, Msg: fmt.Sprintf("expected settings as key: value lines, got a %s", kindName(root))}
	}
	return root, nil
}

// applyOverride sets one -E key=value. The value is YAML, so
// -E queue.mem.events=10 is an int and -E 'output.file.path="x"' a string;
// it replaces the whole subtree at its key.
func applyOverride(root *yaml.Node, spec string, getenv func(string) (string, bool), src *origins) error {
	keyText, valText, ok := strings.Cut(spec, "=")
	key := strings.TrimSpace(keyText)
	label := "-E " + spec
	if isSecretPath(key) {
		label = "-E " + keyText + "=" + redactedText
	}
	if !ok || key == "" {
		return &Error{File: "-E " + shortSpec(spec), Msg: "expected key=value, for example -E output.file.path=/tmp/out"}
	}
	parts := strings.Split(key, ".")
	if !validKey(parts) {
		return &Error{File: label, Msg: fmt.Sprintf("%q is not a valid key (use names separated by single dots)", key)}
	}
	v, err := parseOverrideValue(valText)
	if err != nil {
		return &Error{File: label, Key: key, Msg: err.Error()}
	}
	if hasSecret(v, key) {
		label = "-E " + keyText + "=" + redactedText
	}
	c := &copier{file: label}
	v = c.copy(v, 0)
	if c.err != nil {
		return &Error{File: label, Key: key, Msg: c.err.(*Error).Msg}
	}
	// Override nodes have no line: errors about them name the flag.
	mark := func(n *yaml.Node) *yaml.Node {
		n.Line, n.Column = 0, 0
		src.files[n] = label
		return n
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		mark(n)
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(v)
	ex := &expander{getenv: getenv}
	ex.walk(Raw{node: v, file: label, path: key}, 0)
	z := &normalizer{file: label}
	v = z.node(v, key, 0)
	if errs := append(ex.errs, z.errs...); len(errs) > 0 {
		return joinErrors(errs)
	}
	walk(v)

	cur := root
	for i, part := range parts {
		last := i == len(parts)-1
		var slot **yaml.Node
		switch cur.Kind {
		case yaml.MappingNode:
			idx := findKey(cur, part)
			if idx < 0 {
				k := mark(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: part})
				cur.Content = append(cur.Content, k, nil)
				idx = len(cur.Content) - 2
			}
			slot = &cur.Content[idx+1]
		case yaml.SequenceNode:
			n, err := strconv.Atoi(part)
			if err != nil || n < 0 || n > len(cur.Content) {
				return &Error{File: label, Key: key, Msg: fmt.Sprintf("%s has %d entries; use an index from 0 to %d (%d appends)", strings.Join(parts[:i], "."), len(cur.Content), len(cur.Content), len(cur.Content))}
			}
			if n == len(cur.Content) {
				cur.Content = append(cur.Content, nil)
			}
			slot = &cur.Content[n]
		}
		if last {
			*slot = v
			return nil
		}
		if *slot == nil || ((*slot).Kind != yaml.MappingNode && (*slot).Kind != yaml.SequenceNode) {
			*slot = mark(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"})
		}
		cur = *slot
	}
	return nil
}

// shortSpec keeps a malformed flag readable in a message without echoing
// what could be a secret after its key.
func shortSpec(spec string) string {
	if isSecretPath(strings.TrimSpace(spec)) || len(spec) > 80 {
		return "<flag>"
	}
	return spec
}

func parseOverrideValue(text string) (v *yaml.Node, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("value is not valid YAML: parser failed: %v", p)
		}
	}()
	if strings.TrimSpace(text) == "" {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}, nil
	}
	dec := yaml.NewDecoder(strings.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}, nil
		}
		return nil, fmt.Errorf("value is not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("value is not a single YAML value")
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}, nil
	}
	return doc.Content[0], nil
}
