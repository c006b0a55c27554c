package elasticsearch

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/config/tlscfg"
	"gopkg.in/yaml.v3"
)

// Modes of writing events.
const (
	// ModeDataStream appends to metrics-<dataset>-<namespace> data streams
	// created by the composable templates, as Elastic Agent does.
	ModeDataStream = "data_stream"
	// ModeIndex writes classic indices named by the index pattern, each
	// matched by a template of the dataset.
	ModeIndex = "index"
)

// Config is the `output.elasticsearch` section, with Beats' keys.
type Config struct {
	// Hosts are URLs or host:port pairs (http assumed); requests are
	// balanced round-robin and move on to the next host on failure.
	Hosts []string `yaml:"hosts"`
	// Worker is the number of concurrent bulk requests (clients).
	Worker      int `yaml:"worker"`
	BulkMaxSize int `yaml:"bulk_max_size"`
	// FlushInterval is how long the queue may wait to fill a batch; the
	// agent applies it to the queue, the output sends what it is given.
	FlushInterval config.Duration `yaml:"flush_interval"`
	// CompressionLevel is the gzip level of request bodies; 0 is off.
	CompressionLevel int             `yaml:"compression_level"`
	Timeout          config.Duration `yaml:"timeout"`
	Username         string          `yaml:"username"`
	Password         string          `yaml:"password"`
	// APIKey is "id:key" as the create API key API returns them; it is
	// sent base64-encoded as the ApiKey authorization scheme requires.
	APIKey   string            `yaml:"api_key"`
	Headers  map[string]string `yaml:"headers"`
	ProxyURL string            `yaml:"proxy_url"`
	SSL      tlscfg.Config     `yaml:"ssl"`
	// Namespace is set as data_stream.namespace on every event and names
	// the data stream.
	Namespace string `yaml:"namespace"`
	Mode      string `yaml:"mode"`
	// Index is the index name pattern of index mode: %{[dotted.field]} is
	// the event's value, %{+yyyy.MM.dd} its date (Joda letters yyyy, MM,
	// dd, HH), as in Beats.
	Index              string             `yaml:"index"`
	NonIndexablePolicy NonIndexablePolicy `yaml:"non_indexable_policy"`
	Backoff            Backoff            `yaml:"backoff"`

	// Template is the `setup.template` section, decoded by the agent with
	// DecodeTemplateConfig; it is not a key of output.elasticsearch.
	Template TemplateConfig `yaml:"-"`
	// Engine is the server kind the output writes to, set by the output
	// that decodes the section (nil: Elasticsearch); not a key.
	Engine *Engine `yaml:"-"`
}

// Backoff bounds the output's own wait after a request that stored nothing.
type Backoff struct {
	Init config.Duration `yaml:"init"`
	Max  config.Duration `yaml:"max"`
}

// Non-indexable policies.
const (
	PolicyDrop            = "drop"
	PolicyDeadLetterIndex = "dead_letter_index"
)

// NonIndexablePolicy says what happens to an event Elasticsearch refuses
// for the document itself (a mapping conflict, a bad value: 400 with a
// document error type, 404 for a target that cannot be created) or that
// is larger on its own than the cluster accepts (413): `drop: ~` or
// `dead_letter_index: {index: NAME}`, as in Beats. Every other refusal
// is retried.
type NonIndexablePolicy struct {
	Action string // PolicyDrop or PolicyDeadLetterIndex
	Index  string // dead-letter index name
}

// UnmarshalYAML accepts exactly one of the two policies.
func (p *NonIndexablePolicy) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return errors.New("expected exactly one of `drop: ~` or `dead_letter_index: {index: NAME}`")
	}
	key, val := n.Content[0].Value, n.Content[1]
	switch key {
	case PolicyDrop:
		*p = NonIndexablePolicy{Action: PolicyDrop}
		return nil
	case PolicyDeadLetterIndex:
		var dl struct {
			Index string `yaml:"index"`
		}
		if val.Kind != yaml.MappingNode {
			return errors.New("dead_letter_index: expected a mapping with an index key")
		}
		for i := 0; i+1 < len(val.Content); i += 2 {
			if k := val.Content[i].Value; k != "index" {
				return fmt.Errorf("dead_letter_index: unknown key %q (only index)", k)
			}
		}
		if err := val.Decode(&dl); err != nil {
			return fmt.Errorf("dead_letter_index: %w", err)
		}
		*p = NonIndexablePolicy{Action: PolicyDeadLetterIndex, Index: dl.Index}
		return nil
	}
	return fmt.Errorf("unknown policy %q (use drop or dead_letter_index)", key)
}

// TemplateConfig is the `setup.template` section.
type TemplateConfig struct {
	// Enabled installs the templates when the agent starts.
	Enabled bool `yaml:"enabled"`
	// Priority of the index templates: above the built-in metrics
	// template (100) so ours win for metrics-fleutan.*.
	Priority int `yaml:"priority"`
	Shards   int `yaml:"number_of_shards"`
	Replicas int `yaml:"number_of_replicas"`
	// IndexMode is the index.mode of the data streams of TimeSeriesDatasets
	// in data stream mode: IndexModeTimeSeries (TSDS) or
	// IndexModeStandard. It takes effect when a data stream is created or
	// rolls over.
	IndexMode string `yaml:"index_mode"`
}

// Index modes of setup.template.index_mode (Elasticsearch's index.mode).
const (
	IndexModeStandard   = "standard"
	IndexModeTimeSeries = "time_series"
)

// DefaultTemplateConfig returns Beats' defaults with our priority.
func DefaultTemplateConfig() TemplateConfig {
	return TemplateConfig{Enabled: true, Priority: 150, Shards: 1, Replicas: 1, IndexMode: IndexModeTimeSeries}
}

// DecodeTemplateConfig decodes and validates the `setup.template` section.
func DecodeTemplateConfig(raw config.Raw) (TemplateConfig, error) {
	t := DefaultTemplateConfig()
	if err := raw.Decode(&t); err != nil {
		return t, err
	}
	var errs []error
	if t.Priority < 0 {
		errs = append(errs, config.Errorf("priority", "%d must not be negative", t.Priority))
	}
	if t.Shards < 1 {
		errs = append(errs, config.Errorf("number_of_shards", "%d must be at least 1", t.Shards))
	}
	if t.Replicas < 0 {
		errs = append(errs, config.Errorf("number_of_replicas", "%d must not be negative", t.Replicas))
	}
	if t.IndexMode != IndexModeStandard && t.IndexMode != IndexModeTimeSeries {
		errs = append(errs, config.Errorf("index_mode", "%q is not an index mode (use time_series or standard)", t.IndexMode))
	}
	return t, raw.Locate(errors.Join(errs...))
}

// DefaultIndex is the index pattern of index mode.
const DefaultIndex = "fleutan-%{[event.dataset]}-%{+yyyy.MM.dd}"

// DefaultConfig returns Beats' defaults.
func DefaultConfig() Config {
	return Config{
		Hosts:              []string{"http://localhost:9200"},
		Worker:             1,
		BulkMaxSize:        1600,
		FlushInterval:      config.Duration(time.Second),
		CompressionLevel:   1,
		Timeout:            config.Duration(90 * time.Second),
		Namespace:          "default",
		Mode:               ModeDataStream,
		Index:              DefaultIndex,
		NonIndexablePolicy: NonIndexablePolicy{Action: PolicyDrop},
		Backoff:            Backoff{Init: config.Duration(time.Second), Max: config.Duration(time.Minute)},
		SSL:                tlscfg.Config{VerificationMode: "full"},
		Template:           DefaultTemplateConfig(),
	}
}

// Validate checks the values; keys in errors are relative to
// output.elasticsearch.
func (c Config) Validate() error {
	var errs []error
	if len(c.Hosts) == 0 {
		errs = append(errs, config.Errorf("hosts", "must list at least one host"))
	}
	for i, h := range c.Hosts {
		if _, err := hostURL(h); err != nil {
			errs = append(errs, config.Errorf(fmt.Sprintf("hosts.%d", i), "%v", err))
		}
	}
	if c.Worker < 1 || c.Worker > 64 {
		errs = append(errs, config.Errorf("worker", "%d is out of range [1, 64]", c.Worker))
	}
	if c.BulkMaxSize < 1 || c.BulkMaxSize > 100000 {
		errs = append(errs, config.Errorf("bulk_max_size", "%d is out of range [1, 100000]", c.BulkMaxSize))
	}
	if c.FlushInterval < 0 {
		errs = append(errs, config.Errorf("flush_interval", "must not be negative"))
	}
	if c.CompressionLevel < 0 || c.CompressionLevel > 9 {
		errs = append(errs, config.Errorf("compression_level", "%d is out of range [0, 9] (0 is off)", c.CompressionLevel))
	}
	if c.Timeout <= 0 {
		errs = append(errs, config.Errorf("timeout", "must be positive"))
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, config.Errorf("password", "username and password go together"))
	}
	if c.APIKey != "" && !c.engine().APIKeys {
		errs = append(errs, config.Errorf("api_key", "%s has no API keys; use username and password", c.engine().Product))
	} else if c.APIKey != "" {
		if id, key, ok := strings.Cut(c.APIKey, ":"); !ok || id == "" || key == "" {
			errs = append(errs, config.Errorf("api_key", "must be id:key as returned by the create API key API"))
		}
		if c.Username != "" {
			errs = append(errs, config.Errorf("api_key", "set either api_key or username/password, not both"))
		}
	}
	if c.ProxyURL != "" {
		if u, err := url.Parse(c.ProxyURL); err != nil || u.Host == "" {
			errs = append(errs, config.Errorf("proxy_url", "%q is not a URL such as http://proxy:3128", c.ProxyURL))
		}
	}
	if err := c.SSL.Validate(); err != nil {
		errs = append(errs, config.Prefix("ssl", err))
	}
	if err := checkNamePart(c.Namespace); err != nil {
		errs = append(errs, config.Errorf("namespace", "%v", err))
	}
	switch c.Mode {
	case ModeDataStream:
	case ModeIndex:
		if p, err := parsePattern(c.Index); err != nil {
			errs = append(errs, config.Errorf("index", "%v", err))
		} else if err := p.checkFields(); err != nil {
			errs = append(errs, config.Errorf("index", "%v", err))
		}
	default:
		errs = append(errs, config.Errorf("mode", "%q is not data_stream or index", c.Mode))
	}
	switch c.NonIndexablePolicy.Action {
	case PolicyDrop:
	case PolicyDeadLetterIndex:
		if err := checkIndexName(c.NonIndexablePolicy.Index); err != nil {
			errs = append(errs, config.Errorf("non_indexable_policy.dead_letter_index.index", "%v", err))
		}
	default:
		errs = append(errs, config.Errorf("non_indexable_policy", "%q is not drop or dead_letter_index", c.NonIndexablePolicy.Action))
	}
	if c.Backoff.Init <= 0 {
		errs = append(errs, config.Errorf("backoff.init", "must be positive"))
	}
	if c.Backoff.Max < c.Backoff.Init {
		errs = append(errs, config.Errorf("backoff.max", "must be at least backoff.init"))
	}
	return errors.Join(errs...)
}

// hostURL turns a hosts entry into a URL: "host:9200" means http.
func hostURL(h string) (*url.URL, error) {
	s := h
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%q is not a URL such as https://es:9200", h)
	}
	if u.Port() == "" {
		u.Host += ":9200"
	}
	return u, nil
}

// checkNamePart enforces the data stream naming rules for dataset and
// namespace: lowercase, no '-' (it separates the parts), none of the
// characters index names refuse, at most 100 bytes.
func checkNamePart(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > 100:
		return errors.New("is longer than 100 bytes")
	case strings.ToLower(s) != s:
		return fmt.Errorf("%q must be lowercase", s)
	case strings.ContainsAny(s, `-\/*?"<>| ,#:`):
		return fmt.Errorf("%q must not contain any of - \\ / * ? \" < > | , # : or a space", s)
	}
	return nil
}

// checkIndexName applies Elasticsearch's index name rules.
func checkIndexName(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > 255:
		return errors.New("is longer than 255 bytes")
	case strings.ToLower(s) != s:
		return fmt.Errorf("%q must be lowercase", s)
	case strings.ContainsAny(s, `\/*?"<>| ,#:`):
		return fmt.Errorf("%q must not contain any of \\ / * ? \" < > | , # : or a space", s)
	case s[0] == '-' || s[0] == '_' || s[0] == '+' || s == "." || s == "..":
		return fmt.Errorf("%q must not start with -, _ or +", s)
	}
	return nil
}
