package kibana

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/fleutan/fleutanbeat/config"
	"github.com/fleutan/fleutanbeat/config/tlscfg"
)

// Config is the `setup.kibana` section.
type Config struct {
	// Host is host:port or a URL; without a scheme http is assumed, as in
	// Beats.
	Host     string `yaml:"host"`
	Space    Space  `yaml:"space"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// APIKey is "id:api_key" as Kibana's API key UI shows it encoded, or
	// already base64-encoded; it is sent as "Authorization: ApiKey ...".
	APIKey  string          `yaml:"api_key"`
	SSL     tlscfg.Config   `yaml:"ssl"`
	Timeout config.Duration `yaml:"timeout"`
}

// Space is `setup.kibana.space`.
type Space struct {
	ID string `yaml:"id"`
}

// DefaultConfig returns Beats' defaults for setup.kibana.
func DefaultConfig() Config {
	return Config{
		Host:    "localhost:5601",
		SSL:     tlscfg.Config{VerificationMode: "full"},
		Timeout: config.Duration(90 * time.Second),
	}
}

// Decode decodes the `setup.kibana` section strictly over the defaults and
// validates it.
func Decode(raw config.Raw) (Config, error) {
	c := DefaultConfig()
	err := raw.DecodeValid(&c)
	return c, err
}

// Validate checks the values; it does not touch the network.
func (c Config) Validate() error {
	var errs []error
	if _, err := c.baseURL(); err != nil {
		errs = append(errs, config.Errorf("host", "%v", err))
	}
	if c.Space.ID != "" && strings.ContainsAny(c.Space.ID, "/?#% ") {
		errs = append(errs, config.Errorf("space.id", "%q is not a space id (lower-case letters, digits, _ and -)", c.Space.ID))
	}
	if c.APIKey != "" && (c.Username != "" || c.Password != "") {
		errs = append(errs, config.Errorf("api_key", "set either api_key or username/password, not both"))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, config.Errorf("username", "password is set but username is empty"))
	}
	if err := c.SSL.Validate(); err != nil {
		errs = append(errs, config.Prefix("ssl", err))
	}
	if c.Timeout <= 0 {
		errs = append(errs, config.Errorf("timeout", "%s must be positive", c.Timeout.D()))
	}
	return errors.Join(errs...)
}

// baseURL is Host as a URL with the space prefix (/s/<id>) applied.
func (c Config) baseURL() (*url.URL, error) {
	h := strings.TrimSpace(c.Host)
	if h == "" {
		return nil, errors.New("must not be empty")
	}
	if !strings.Contains(h, "://") {
		h = "http://" + h
	}
	u, err := url.Parse(h)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("scheme must be http or https, not " + u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("has no host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("must not have a query or fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if c.Space.ID != "" && c.Space.ID != "default" {
		u.Path += "/s/" + c.Space.ID
	}
	return u, nil
}
