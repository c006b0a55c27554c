// Package kibana holds the Kibana saved objects (a data view for
// metrics-fleutan.*, Lens visualizations and four dashboards) and imports
// them through Kibana's saved objects API for `fleutanbeat setup
// --dashboards`.
package kibana

import (
	"bytes"
	_ "embed"
)

//go:generate go run ./internal/gen -o fleutan.ndjson

// MinVersion is the oldest Kibana that accepts the objects. Kibana refuses
// a saved object whose typeMigrationVersion is newer than its own, and the
// Lens and dashboard objects are written at 8.9.0; TestMinVersionIsWhatTheObjectsDeclare
// keeps this equal to the newest version in the bundle, and the docs say
// the same.
const MinVersion = "8.9"

//go:embed fleutan.ndjson
var objects []byte

// Objects returns the NDJSON bundle, one saved object a line, in the format
// of Kibana's saved objects export. The caller gets its own copy.
func Objects() []byte { return bytes.Clone(objects) }
