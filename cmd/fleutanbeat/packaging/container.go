package packaging

// Mount is a path of the host mounted into the agent's container.
type Mount struct {
	// Name is the DaemonSet's volume name.
	Name     string
	HostPath string
	Path     string // in the container
	ReadOnly bool
}

// ContainerRun is how the agent's image is run on a node: the DaemonSet
// of kubernetes.yaml and the image test (docker run) both follow it, and
// the manifest test checks the manifest against it, so the two cannot
// drift apart.
type ContainerRun struct {
	// The host's network and pid namespaces: its sockets, qdiscs and
	// processes, with host pids.
	HostNetwork, HostPID bool
	// UID runs the agent; see Run for why it is 0.
	UID int
	// CapAdd are the only capabilities left after dropping all (names
	// without CAP_, as Docker and Kubernetes write them).
	CapAdd []string
	// ReadOnlyRoot and NoNewPrivileges harden the container.
	ReadOnlyRoot, NoNewPrivileges bool
	// HostMounts are the host's paths the agent reads.
	HostMounts []Mount
	// DataPath is path.data, a writable host path so that the agent id
	// (and with it the event ids) survives a new container.
	DataPath string
	// ConfigPath is the config file (a ConfigMap's folder in Kubernetes).
	ConfigPath string
	// Args are the agent's arguments (the image's ENTRYPOINT is the
	// binary).
	Args []string
}

// Hostfs is where the host's root is mounted: the agent's --hostfs.
const Hostfs = "/hostfs"

// Run is the one way the image runs as a node agent.
//
// uid 0 with every capability dropped but the four of README.md: a pod
// spec cannot give a non-root user ambient capabilities (Kubernetes puts
// capabilities.add of a non-root container in its bounding and permitted
// sets only, so an exec'd non-root agent holds none of them effectively),
// and file capabilities on the binary would need the security.capability
// xattr to survive the image layer, which COPY in a FROM scratch build
// does not promise. The image's own default user (USER in the
// Dockerfile) is the non-root fleutanbeat (10001), for runs that need no
// capability; Run overrides it.
var Run = ContainerRun{
	HostNetwork:     true,
	HostPID:         true,
	UID:             0,
	CapAdd:          []string{"SYS_PTRACE", "DAC_READ_SEARCH", "BPF", "PERFMON"},
	ReadOnlyRoot:    true,
	NoNewPrivileges: true,
	HostMounts: []Mount{
		{Name: "proc", HostPath: "/proc", Path: Hostfs + "/proc", ReadOnly: true},
		{Name: "sys", HostPath: "/sys", Path: Hostfs + "/sys", ReadOnly: true},
		{Name: "machine-id", HostPath: "/etc/machine-id", Path: Hostfs + "/etc/machine-id", ReadOnly: true},
		{Name: "netns", HostPath: "/run/netns", Path: "/run/netns", ReadOnly: true},
	},
	DataPath:   "/var/lib/fleutanbeat",
	ConfigPath: "/etc/fleutanbeat/fleutanbeat.yml",
	Args: []string{"run", "-e", "-c", "/etc/fleutanbeat/fleutanbeat.yml",
		"--path.home", "/usr/share/fleutanbeat", "--path.data", "/var/lib/fleutanbeat", "--hostfs", Hostfs},
}
