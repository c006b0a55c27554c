package flows

import (
	"testing"

	"github.com/fleutan/fleutanbeat/input/flows/internal/flowtest"
)

func TestMain(m *testing.M) { flowtest.Main(m) }
