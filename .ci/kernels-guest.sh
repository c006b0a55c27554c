# Runs inside the kernel-matrix guest as root (see .ci/kernels.sh): every
# test binary of /fbt/pkgs in its package directory. Its output goes back on
# the second serial port; @@FBT lines frame each package for the report.
. /fbt/env
export FLEUTANBEAT_REQUIRE_ROOT=1
# Kernel features the Debian kernels have and the host may lack (qdisc
# kinds, ...): in the guest their absence is a failure, not a skip.
export FLEUTANBEAT_REQUIRE_KERNEL=1
# No Elasticsearch and no reference tools in the guest: those tests skip
# with their reason (FLEUTANBEAT_REQUIRE_ES and _TOOLS stay unset).
export TMPDIR=/tmp PATH=/fbt/bin:$PATH
# The guest has no go tool to build the fleutan that cmd/fleutan runs.
export FLEUTANBEAT_FLEUTAN_BIN=/fbt/bin/fleutan
# Nor to build input/libtest's program.
export FLEUTANBEAT_LIBUSER_BIN=/fbt/bin/libuser
# The guest has no network interface: its own initial namespace is a
# sandbox too (the soft-RoCE tests need it, see input/internal/rxetest).
export FLEUTANBEAT_KERNEL_MATRIX=1
echo "@@FBT-KERNEL $(uname -r) cpus=$(nproc)"
while read -r pkg; do
	cd "/fbt/src/$pkg" || continue
	echo "@@FBT-PKG $pkg"
	start=$(date +%s)
	./pkg.test -test.v -test.count=1 -test.timeout "$TEST_TIMEOUT" </dev/null 2>&1
	rc=$?
	echo "@@FBT-END $pkg rc=$rc seconds=$(($(date +%s) - start))"
done </fbt/pkgs
