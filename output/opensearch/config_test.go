package opensearch

import (
	"strings"
	"testing"

	"github.com/fleutan/fleutanbeat/config"
	"gopkg.in/yaml.v3"
)

// TestConfigKeysAreElasticsearchsButAPIKey decodes output.opensearch
// sections: the keys of output.elasticsearch, with api_key refused since
// OpenSearch has no such keys.
func TestConfigKeysAreElasticsearchsButAPIKey(t *testing.T) {
	cases := []struct {
		name, yaml, wantErr string
	}{
		{"hosts and options", "hosts: [\"https://os1:9200\", \"os2\"]\nworker: 2\nusername: u\npassword: p\nnon_indexable_policy: {dead_letter_index: {index: dlq}}\n", ""},
		{"api_key", "hosts: [os]\napi_key: \"id:key\"\n", "api_key: OpenSearch has no API keys"},
		{"unknown key", "hosts: [os]\ncloud.id: x\n", "cloud"},
		{"bad worker", "worker: 0\n", "worker: 0 is out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.yaml), &doc); err != nil {
				t.Fatal(err)
			}
			c, err := DecodeWithSetup(config.NewRaw(doc.Content[0], "fleutanbeat.yml", "output.opensearch"), config.Raw{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Engine != Engine || c.Worker != 2 || len(c.Hosts) != 2 {
					t.Fatalf("decoded %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
