package sockdiag

// TCP states as numbered in linux/tcp_states.h (enum, starting at 1). The
// kernel reports UDP sockets with the same numbers. They are untyped so they
// serve both as Socket.State values and as shifts in Request.States
// (1<<TCP_LISTEN).
// The kernel's names are kept on purpose so they can be grepped in both.
const (
	TCP_ESTABLISHED    = 1
	TCP_SYN_SENT       = 2
	TCP_SYN_RECV       = 3
	TCP_FIN_WAIT1      = 4
	TCP_FIN_WAIT2      = 5
	TCP_TIME_WAIT      = 6
	TCP_CLOSE          = 7
	TCP_CLOSE_WAIT     = 8
	TCP_LAST_ACK       = 9
	TCP_LISTEN         = 10
	TCP_CLOSING        = 11
	TCP_NEW_SYN_RECV   = 12
	TCP_BOUND_INACTIVE = 13
)

// AllStates is the Request.States mask of every state, including states a
// newer kernel may add; a zero mask means the same.
const AllStates uint32 = ^uint32(0)

// stateNames are the names ss(8) prints (misc/ss.c sstate_name), lower-case
// with underscores so they work as field values.
var stateNames = [...]string{
	TCP_ESTABLISHED:    "established",
	TCP_SYN_SENT:       "syn_sent",
	TCP_SYN_RECV:       "syn_recv",
	TCP_FIN_WAIT1:      "fin_wait1",
	TCP_FIN_WAIT2:      "fin_wait2",
	TCP_TIME_WAIT:      "time_wait",
	TCP_CLOSE:          "close",
	TCP_CLOSE_WAIT:     "close_wait",
	TCP_LAST_ACK:       "last_ack",
	TCP_LISTEN:         "listen",
	TCP_CLOSING:        "closing",
	TCP_NEW_SYN_RECV:   "new_syn_recv",
	TCP_BOUND_INACTIVE: "bound_inactive",
}

// StateName returns the ss-style name of a kernel socket state, or
// "unknown" for numbers a newer kernel may add.
func StateName(s uint8) string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return "unknown"
}
