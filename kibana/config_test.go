package kibana

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/fleutan/fleutanbeat/config"
)

func decodeYAML(t *testing.T, src string) (Config, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return Decode(config.NewRaw(doc.Content[0], "fleutanbeat.yml", "setup.kibana"))
}

func TestDecodeConfig(t *testing.T) {
	tests := []struct {
		name, src, wantErr, wantURL string
	}{
		{"defaults", "{}", "", "http://localhost:5601"},
		{"space and https", "host: https://kb:5601/\nspace:\n  id: netops\n", "", "https://kb:5601/s/netops"},
		{"unknown key", "hots: kb\n", "hots", ""},
		{"both auth", "api_key: a:b\nusername: u\n", "setup.kibana.api_key: set either api_key or username/password", ""},
		{"bad mode", "ssl:\n  verification_mode: strictest\n", "setup.kibana.ssl.verification_mode: \"strictest\" is not one of full, strict, certificate, none", ""},
		{"key without certificate", "ssl:\n  key: k.pem\n", "setup.kibana.ssl.certificate: certificate and key must be set together", ""},
		{"bad scheme", "host: ftp://kb\n", "setup.kibana.host: scheme must be http or https", ""},
		{"bad space", "space:\n  id: a/b\n", "setup.kibana.space.id:", ""},
		{"zero timeout", "timeout: 0s\n", "setup.kibana.timeout: 0s must be positive", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := decodeYAML(t, tt.src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, err := c.baseURL()
			if err != nil || u.String() != tt.wantURL {
				t.Errorf("url %v %v, want %s", u, err, tt.wantURL)
			}
		})
	}
}
