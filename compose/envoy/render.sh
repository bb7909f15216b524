#!/bin/sh
# The envoy image has no envsubst: a here-document expands ${NAME} from the environment (set -u makes a
# missing one fatal). Templates must hold no other "$", "`" or "\\" than the "\"" and "\n" of YAML strings.
set -eu
template=$1
shift
eval "cat <<MESHSCOPE_TEMPLATE_END
$(cat "$template")
MESHSCOPE_TEMPLATE_END" >/tmp/envoy.yaml
exec envoy -c /tmp/envoy.yaml "$@"
