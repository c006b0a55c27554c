package qdisc

// The eBPF object and its Go bindings (xmit_bpfel.go, xmit_bpfel.o) are
// committed; regenerating them needs clang and the libbpf headers
// (apt-get install clang llvm libbpf-dev) and is only required after
// editing bpf/xmit.c.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel -type flow_key -type flow_val xmit bpf/xmit.c -- -O2 -g -Wall -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
