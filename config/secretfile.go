package config

import (
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxSecretFile bounds what a *_file key may read: a credential, not a
// document.
const maxSecretFile = 64 << 10

// readSecretFiles replaces every `<secret>_file: PATH` (password_file,
// api_key_file, ...) with `<secret>: <the file's content>`, trailing
// newline removed, so credentials can live in files (Kubernetes Secrets,
// systemd credentials) instead of the config. The file must not be readable
// or writable by others; errors name the key and path, never the content.
func readSecretFiles(r Raw, depth int) []error {
	n := r.node
	if n == nil || depth > maxDecodeDepth {
		return nil
	}
	var errs []error
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range r.List() {
			errs = append(errs, readSecretFiles(c, depth+1)...)
		}
		return errs
	case yaml.MappingNode:
	default:
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		val := r.sub(n.Content[i+1], join(r.path, key))
		base, ok := strings.CutSuffix(key, "_file")
		if !ok || !IsSecretKey(base) {
			errs = append(errs, readSecretFiles(val, depth+1)...)
			continue
		}
		if _, dup := r.Child(base); dup {
			errs = append(errs, val.Errorf("set either %s or %s, not both", base, key))
			continue
		}
		if val.node.Kind != yaml.ScalarNode || val.node.Value == "" {
			errs = append(errs, val.Errorf("must be the path of a file holding the %s", base))
			continue
		}
		secret, err := readSecretFile(val.node.Value)
		if err != nil {
			errs = append(errs, val.Errorf("%v", err))
			continue
		}
		// The key becomes the secret itself, kept at the file key's
		// position so errors about it still point somewhere useful.
		n.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: base, Line: n.Content[i].Line, Column: n.Content[i].Column}
		n.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: secret, Line: val.node.Line, Column: val.node.Column}
	}
	return errs
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %s", path, pathErrText(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %s", path, pathErrText(err))
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("%s is accessible by others (mode %04o); run chmod o-rwx %s", path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %s", path, pathErrText(err))
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than %d KiB; is it really a credential?", path, maxSecretFile>>10)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
