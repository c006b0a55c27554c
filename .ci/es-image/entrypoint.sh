#!/bin/bash
# Elasticsearch configured by environment: every variable named like a
# setting (lower case, dotted: http.port=9250) becomes -Ekey=value, over
# the defaults below (a single node on 127.0.0.1 of the host network, on
# the first free ports of two ranges, which it writes to logs/*.ports).
set -euo pipefail
declare -A set=(
	[network.host]=127.0.0.1
	[http.port]=19200-19999
	[transport.port]=29300-29999
	[node.portsfile]=true
	[cluster.name]=fleutan-test
	[discovery.type]=single-node
	[xpack.security.enabled]=false
	[cluster.routing.allocation.disk.threshold_enabled]=false
)
while IFS= read -r -d '' kv; do
	[[ $kv =~ ^[a-z0-9_]+(\.[a-z0-9_]+)+= ]] && set[${kv%%=*}]=${kv#*=}
done </proc/self/environ
# A cluster of several nodes lists its peers; single-node discovery would
# refuse them.
[[ -n ${set[discovery.seed_hosts]:-} ]] && unset 'set[discovery.type]'
args=()
for k in "${!set[@]}"; do args+=("-E$k=${set[$k]}"); done
exec "$ES_HOME/bin/elasticsearch" "${args[@]}" "$@"
