package cpu

import (
	"testing"

	"github.com/fleutan/fleutanbeat/input/cpu/internal/cputest"
)

func TestMain(m *testing.M) { cputest.Main(m) }
