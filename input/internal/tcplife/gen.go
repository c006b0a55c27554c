package tcplife

// The eBPF object and its Go bindings (tcplife_bpfel.go, tcplife_bpfel.o)
// are committed, so building and testing need no clang. Regenerating needs
// clang (14 or later) and the libbpf headers (Debian: apt-get install
// clang llvm libbpf-dev), and is only required after editing
// bpf/tcplife.c:
//
//	go generate ./input/internal/tcplife/
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -tags linux -target bpfel -type closed_conn -type conn tcplife bpf/tcplife.c -- -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
