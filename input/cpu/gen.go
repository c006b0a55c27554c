package cpu

// The eBPF object and its Go bindings are committed, so building and
// testing need no clang. Regenerating needs clang (14 or later) and the
// libbpf headers (Debian: apt-get install clang llvm libbpf-dev):
//
//	go generate ./input/cpu/
//
//go:generate sh -c "go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags '-O2 -g -Wall -Werror' -tags linux -type oncpu_cur schedcore bpf/schedcore.c -- -I/usr/include/$(uname -m)-linux-gnu"
