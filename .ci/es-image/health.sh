#!/bin/bash
# Healthy once the node answers on the HTTP port it wrote to
# logs/http.ports: cluster health yellow or green, or 401 when security is
# on (health then needs credentials the test makes later).
set -u
port="$(head -n1 "$ES_HOME/logs/http.ports" 2>/dev/null)" || exit 1
port="${port##*:}"
for scheme in http https; do
	code="$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 \
		"$scheme://127.0.0.1:$port/_cluster/health?wait_for_status=yellow&timeout=1s")"
	[[ $code == 200 || $code == 401 ]] && exit 0
done
exit 1
