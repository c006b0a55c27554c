// Package packaging holds what deploys fleutanbeat on a fleet: the systemd
// unit (fleutanbeat.service), the Debian package build (build-deb.sh, deb/),
// the container image (Dockerfile) and the Kubernetes DaemonSet
// (kubernetes.yaml). It has no Go code of its own; its tests build the
// package and run the agent binary as an unprivileged user with the
// documented capabilities (README.md).
package packaging
