#!/bin/sh
# Prints the README's "Supported kernels" table from a matrix result file
# (.ci/kernels-matrix.tsv: feature, test, suite, release, result per line,
# in the order of .ci/kernels-features.tsv and of the kernels booted).
#   kernels-readme.sh [MATRIX_TSV]
set -eu
f=${1:-$(dirname "$0")/kernels-matrix.tsv}
awk -F '\t' '
!($4 in seenk) { seenk[$4] = 1; ks[nk++] = $4; suite[$4] = $3 }
!($1 in seenf) { seenf[$1] = 1; fs[nf++] = $1; test[$1] = $2 }
{ res[$1, $4] = $5 }
END {
	printf "| Feature | Test |"
	for (i = 0; i < nk; i++) printf " %s (%s) |", ks[i], suite[ks[i]]
	printf " Lowest kernel |\n|---|---|"
	for (i = 0; i < nk; i++) printf "---|"
	printf "---|\n"
	for (j = 0; j < nf; j++) {
		f = fs[j]
		printf "| %s | `%s` |", f, test[f]
		# The lowest kernel from which every newer one passes too.
		low = ""
		for (i = 0; i < nk; i++) {
			r = res[f, ks[i]]
			printf " %s |", r
			if (r == "pass") { if (low == "") low = ks[i] } else low = ""
		}
		printf " %s |\n", (low == "" ? "none passed" : low)
	}
}' "$f"
