package flowsinput

// TCP states (linux/tcp_states.h) as the tests name them.
const (
	stateEstablished = 1
	stateSynSent     = 2
	stateFinWait1    = 4
	stateFinWait2    = 5
	stateCloseWait   = 8
	stateLastAck     = 9
	stateClose       = 7
	stateListen      = 10
)
