package config

import (
	"bytes"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"
)

const redactedText = "<redacted>"

var secretKeys = map[string]bool{
	"password": true, "passwd": true, "api_key": true, "token": true,
	"secret": true, "passphrase": true, "key_passphrase": true,
}

// IsSecretKey reports whether a key (one name, not a dotted path) holds a
// credential whose value must never be shown: in exported configs, in
// errors, in logs.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	return secretKeys[k] || strings.HasSuffix(k, "_password") ||
		strings.HasSuffix(k, "_token") || strings.HasSuffix(k, "_secret")
}

// isSecretPath reports whether any name of a dotted path is secret, so a
// list or mapping under a secret key is masked too.
func isSecretPath(path string) bool {
	for _, p := range strings.Split(path, ".") {
		if IsSecretKey(p) {
			return true
		}
	}
	return false
}

// hasSecret reports whether a value set at path is or holds a secret.
func hasSecret(n *yaml.Node, path string) bool {
	if isSecretPath(path) {
		return true
	}
	var walk func(n *yaml.Node, depth int) bool
	walk = func(n *yaml.Node, depth int) bool {
		if n == nil || depth > maxDecodeDepth {
			return false
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				for _, p := range strings.Split(n.Content[i].Value, ".") {
					if IsSecretKey(p) {
						return true
					}
				}
			}
		}
		for _, c := range n.Content {
			if walk(c, depth+1) {
				return true
			}
		}
		return n.Kind == yaml.AliasNode && walk(n.Alias, depth+1)
	}
	return walk(n, 0)
}

// Redacted renders the effective config (after ${VAR} expansion, dotted
// keys nested, -E applied) as YAML, with every secret value replaced by
// <redacted>: what `fleutanbeat export config` prints.
func Redacted(root Raw) ([]byte, error) {
	if root.node == nil {
		return []byte("{}\n"), nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(redactCopy(root.node, false, false, 0)); err != nil {
		return nil, root.Errorf("cannot render the config: %v", err)
	}
	if err := enc.Close(); err != nil {
		return nil, root.Errorf("cannot render the config: %v", err)
	}
	return buf.Bytes(), nil
}

// redactURL masks the password of a URL with credentials
// (socks5://user:pw@proxy) whatever key holds it, as url.URL.Redacted does.
func redactURL(v string) string {
	if !strings.Contains(v, "://") || !strings.Contains(v, "@") {
		return v
	}
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	if _, has := u.User.Password(); !has {
		return v
	}
	return u.Redacted()
}

// redactCopy copies n for export; isKey tells a mapping key, which is
// never expanded and so needs no escaping.
func redactCopy(n *yaml.Node, secret, isKey bool, depth int) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxDecodeDepth; i++ {
		n = n.Alias
	}
	if secret || depth > maxDecodeDepth || n.Kind == yaml.AliasNode {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: redactedText}
	}
	cp := &yaml.Node{Kind: n.Kind, Tag: n.Tag, Value: n.Value, Style: n.Style &^ yaml.FlowStyle}
	if n.Kind == yaml.ScalarNode {
		// Escaped so that loading the export gives the same values back.
		if !isKey {
			cp.Value = strings.ReplaceAll(redactURL(n.Value), "${", "$${")
		}
		// yaml.v3 writes a plain !!str as is, so "10" or "<<" would read
		// back as an int or a merge key: quote what would change type.
		plain := cp.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
		if plain && cp.ShortTag() == "!!str" && (cp.Value == "<<" || (&yaml.Node{Kind: yaml.ScalarNode, Value: cp.Value}).ShortTag() != "!!str") {
			cp.Style |= yaml.DoubleQuotedStyle
		}
	}
	if n.Kind == yaml.DocumentNode {
		cp.Style = 0
	}
	for i, c := range n.Content {
		inMap := n.Kind == yaml.MappingNode
		childSecret := inMap && i%2 == 1 && IsSecretKey(n.Content[i-1].Value)
		cp.Content = append(cp.Content, redactCopy(c, childSecret, inMap && i%2 == 0, depth+1))
	}
	return cp
}
