// Package packaging holds what deploys fleutanbeat on a fleet: the systemd
// unit (fleutanbeat.service), the Debian package build (build-deb.sh, deb/),
// the container image (Dockerfile) and the Kubernetes DaemonSet
// (kubernetes.yaml). Its one piece of Go is Run (container.go), how the
// image runs as a node agent, which the manifest and the image test both
// follow; its tests build the package and the image and run the agent
// binary as an unprivileged user with the documented capabilities
// (README.md), and the image the way the DaemonSet does.
package packaging
