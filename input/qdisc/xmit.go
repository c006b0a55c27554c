package qdisc

// XmitCounter counts, with an eBPF program on the
// net:net_dev_start_xmit tracepoint, the bytes and packets each flow hands
// to each TX queue. Give it to a Collector with Options.Xmit. Only
// OpenXmitCounter makes one that counts.
type XmitCounter struct {
	x *xmitCounter
}

// Attach methods, as logged and as reported by Method.
const (
	MethodTracepoint    = "tracepoint"     // net:net_dev_start_xmit through tracefs
	MethodRawTracepoint = "raw_tracepoint" // the same tracepoint, no tracefs needed
)

// XmitOptions configure OpenXmitCounter.
type XmitOptions struct {
	// Tracefs is where tracefs is or may be mounted
	// ("/sys/kernel/tracing" when empty).
	Tracefs string
	// Methods restricts the attach methods tried, in order
	// (MethodTracepoint, MethodRawTracepoint); both when empty.
	Methods []string
}

// OpenXmitCounter loads and attaches the program: the tracepoint when
// tracefs is (or can be) mounted, else the raw tracepoint. It needs
// CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); the error says why no method
// worked.
func OpenXmitCounter(o XmitOptions) (*XmitCounter, error) {
	if o.Tracefs == "" {
		o.Tracefs = "/sys/kernel/tracing"
	}
	x, err := openXmitCounter(o.Tracefs, o.Methods...)
	if err != nil {
		return nil, err
	}
	return &XmitCounter{x: x}, nil
}

// Method is the attach method in use; "" for a zero XmitCounter, which
// is attached to nothing.
func (x *XmitCounter) Method() string {
	if x.x == nil {
		return ""
	}
	return x.x.Method()
}

// Close detaches the program and frees its map.
func (x *XmitCounter) Close() error {
	if x.x == nil {
		return nil
	}
	return x.x.Close()
}
