#!/bin/sh
# One-shot setup of the logging stack (compose's logs-setup service): the ILM policy and index template
# meshscope ships into Elasticsearch (the policy only when absent: retention is the operator's to
# change), then the Kibana data view for the data stream, once Kibana is up.
set -eu
ES=${ELASTICSEARCH_URL:-http://elasticsearch:9200}
KIBANA=${KIBANA_URL:-http://kibana:5601}
FILES=${SETUP_FILES:-/setup}
NAME=meshscope-access
WAIT_SECONDS=${KIBANA_WAIT_SECONDS:-600}

put_json() {
  curl -fsS -X PUT "$1" -H 'Content-Type: application/json' --data-binary "@$2"
  echo
}

if curl -fsS -o /dev/null "$ES/_ilm/policy/$NAME"; then
  echo "ILM policy $NAME exists; left as it is"
else
  put_json "$ES/_ilm/policy/$NAME" "$FILES/ilm_policy.json"
fi
put_json "$ES/_index_template/$NAME" "$FILES/index_template.json"

waited=0
until curl -fsS "$KIBANA/api/status" 2>/dev/null | grep -Eq '"level": ?"available"'; do
  if [ "$waited" -ge "$WAIT_SECONDS" ]; then
    echo "Kibana at $KIBANA not available after ${WAIT_SECONDS}s" >&2
    exit 1
  fi
  sleep 5
  waited=$((waited + 5))
done
curl -fsS -X POST "$KIBANA/api/data_views/data_view" \
  -H 'kbn-xsrf: meshscope' -H 'Content-Type: application/json' --data-binary "@$FILES/data_view.json"
echo
echo "Kibana data view $NAME ready"
