#!/bin/sh
# Reads the kernel matrix's results (one results-SUITE.log per kernel, as
# the guest script wrote it) and prints the table kernel x package, then
# every skip with its reason and every failure. Exits 1 on any failure or on
# a kernel that did not report.
#   kernels-report.sh RESULTS_DIR SUITE=RELEASE...
set -eu
dir=$1; shift
status=0
summary=$dir/summary.tsv
: >"$summary"
for arg in "$@"; do
	suite=${arg%%=*} rel=${arg#*=}
	f=$dir/results-$suite.log
	[ -f "$f" ] || : >"$f"
	# One row per package: suite release package result skips seconds; and
	# one "skip"/"fail" row per test with its reason.
	awk -v suite="$suite" -v rel="$rel" -v OFS='\t' '
	# The serial line ends lines with CR LF.
	{ sub(/\r$/, "") }
	/^@@FBT-PKG / { pkg = $2; cur = ""; nskip = 0; delete msg; next }
	/^@@FBT-END / {
		rc = $3; sub(/^rc=/, "", rc); secs = $4; sub(/^seconds=/, "", secs)
		res = (rc == 0) ? "pass" : "FAIL"
		print "pkg", suite, rel, pkg, res, nskip, secs
		done[pkg] = 1; pkg = ""; next
	}
	/^@@FBT-DONE/ { finished = 1; next }
	/^@@FBT-WEDGED/ { if (pkg != "") lastline[pkg] = "guest kernel wedged: " substr($0, 14); next }
	pkg == "" { next }
	/^=== (RUN|CONT|NAME|PAUSE) / { cur = $3; next }
	/^    [^ ].*\.(go|sh):[0-9]+: / { m = $0; sub(/^ +/, "", m); msg[cur] = m; next }
	/^ *--- SKIP: / {
		name = $3; nskip++
		print "skip", suite, rel, pkg, name, msg[name]
		next
	}
	/^ *--- FAIL: / { name = $3; print "fail", suite, rel, pkg, name, msg[name]; next }
	/^panic: |^FAIL|timed out/ { if (!(pkg in lastline)) lastline[pkg] = $0 }
	END {
		if (pkg != "") print "pkg", suite, rel, pkg, "FAIL", nskip, "-"
		if (pkg != "") print "fail", suite, rel, pkg, "(crashed or timed out)", lastline[pkg]
		if (!finished) print "nodone", suite, rel
	}' "$f" >>"$summary"
done

awk -F '\t' '
$1 == "pkg" { key = $2 " " $4; cell[key] = ($5 == "pass" && $6 > 0) ? "pass, " $6 " skip" : $5
	if (!($4 in seenp)) { seenp[$4] = 1; pkgs[np++] = $4 }
	if (!($2 in seenk)) { seenk[$2] = 1; ks[nk++] = $2; rel[$2] = $3 } }
$1 == "nodone" { if (!($2 in seenk)) { seenk[$2] = 1; ks[nk++] = $2; rel[$2] = $3 }; nodone[$2] = 1 }
$1 == "skip" { skips[ns++] = sprintf("  %-8s %-28s %-40s %s", $2, $4, $5, $6) }
$1 == "fail" { fails[nf++] = sprintf("  %-8s %-28s %-40s %s", $2, $4, $5, $6) }
END {
	w = 30
	printf "%-" w "s", "package"
	for (i = 0; i < nk; i++) printf " | %-22s", ks[i] " " rel[ks[i]]
	printf "\n"
	for (j = 0; j < np; j++) {
		printf "%-" w "s", pkgs[j]
		for (i = 0; i < nk; i++) { c = cell[ks[i] " " pkgs[j]]; if (c == "") c = "not run"; printf " | %-22s", c }
		printf "\n"
	}
	for (i = 0; i < nk; i++) if (nodone[ks[i]]) printf "kernel %s did not finish (see console-%s.log)\n", ks[i], ks[i]
	if (ns) { print "\nskipped (kernel, package, test, reason):"; for (i = 0; i < ns; i++) print skips[i] }
	if (nf) { print "\nFAILED (kernel, package, test, last message):"; for (i = 0; i < nf; i++) print fails[i] }
}' "$summary"

# The result of each feature's test per kernel, for the README table
# (.ci/kernels-readme.sh): pass, FAIL, skip, "not run", or "refused": the
# test passed by asserting that this kernel refuses the feature (it logged
# "... before Linux X.Y, as expected: ..."), so the feature itself is not
# there. A test is refused when it logged that itself or when every one of
# its subtests did.
features=$(dirname "$0")/kernels-features.tsv
: >"$dir/matrix.tsv"
for arg in "$@"; do
	suite=${arg%%=*} rel=${arg#*=}
	awk -F '\t' -v suite="$suite" -v rel="$rel" -v OFS='\t' '
	BEGIN { n = 0 }
	FNR == NR { if ($0 !~ /^#/ && NF >= 3) { name[n] = $1; pkg[n] = $2; test[n++] = $3 }; next }
	{ sub(/\r$/, "") }
	/^@@FBT-PKG / { split($0, w, " "); cur = w[2]; test_ = ""; next }
	/^=== (RUN|CONT|NAME) / { split($0, w, " "); test_ = w[3]; next }
	/^    [^ ].*\.go:[0-9]+: .* before Linux [0-9.]+, as expected/ { refused[cur, test_] = 1; next }
	/^ *--- (PASS|FAIL|SKIP): / {
		split($0, w, " "); r = w[2]; sub(/:$/, "", r)
		res[cur, w[3]] = (r == "PASS") ? "pass" : (r == "FAIL") ? "FAIL" : "skip"
		parent = w[3]
		if (sub(/\/[^\/]*$/, "", parent)) { subs[cur, parent]++; if ((cur, w[3]) in refused) subsref[cur, parent]++ }
	}
	END {
		for (i = 0; i < n; i++) {
			r = res[pkg[i], test[i]]
			k = pkg[i] SUBSEP test[i]
			if (r == "pass" && (k in refused || (subs[k] > 0 && subsref[k] == subs[k]))) r = "refused"
			print name[i], test[i], suite, rel, (r == "" ? "not run" : r)
		}
	}
	' "$features" "$dir/results-$suite.log" >>"$dir/matrix.tsv"
done

if grep -q -e '^fail' -e '^nodone' -e '	FAIL	' "$summary"; then status=1; fi
grep -q '^pkg' "$summary" || status=1
exit $status
