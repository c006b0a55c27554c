package processor

import (
	"bufio"
	"io"
	"strings"
)

// parseOSRelease reads os-release(5): KEY=value lines where the value may
// be quoted with shell rules ("..." with \-escapes, or '...'). Comments and
// malformed lines are skipped, as the spec asks of readers.
func parseOSRelease(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		out[k] = unquote(v)
	}
	return out, sc.Err()
}

func unquote(v string) string {
	if len(v) < 2 {
		return v
	}
	switch q := v[0]; {
	case q == '\'' && v[len(v)-1] == '\'':
		return v[1 : len(v)-1]
	case q == '"' && v[len(v)-1] == '"':
		var b strings.Builder
		s := v[1 : len(v)-1]
		for i := 0; i < len(s); i++ {
			// Inside double quotes only $ " \ ` are escaped.
			if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$\"\\`", s[i+1]) >= 0 {
				i++
			}
			b.WriteByte(s[i])
		}
		return b.String()
	}
	return v
}

// osFamilies maps an os-release ID (or one of ID_LIKE) to the family
// names Beats reports in host.os.family.
var osFamilies = map[string]string{
	"debian": "debian", "ubuntu": "debian", "raspbian": "debian", "linuxmint": "debian",
	"rhel": "redhat", "redhat": "redhat", "centos": "redhat", "fedora": "redhat", "rocky": "redhat",
	"almalinux": "redhat", "ol": "redhat", "amzn": "redhat", "scientific": "redhat",
	"suse": "suse", "sles": "suse", "opensuse": "suse", "opensuse-leap": "suse", "opensuse-tumbleweed": "suse",
	"arch": "arch", "manjaro": "arch", "alpine": "alpine",
}

func osFamily(rel map[string]string) string {
	for _, id := range append([]string{rel["ID"]}, strings.Fields(rel["ID_LIKE"])...) {
		if f, ok := osFamilies[id]; ok {
			return f
		}
	}
	return rel["ID"]
}
