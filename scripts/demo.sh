#!/usr/bin/env bash
# make demo: the local stack plus every pipeline on sample data, with a readable summary.
# Stops at the end whatever it started, so nothing keeps running.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

if pid_alive "$STATE/serve.pid" && pid_alive "$STATE/moto.pid"; then
  say "using the running local stack"
else
  "$ROOT/scripts/devstack.sh" up
  trap '"$ROOT/scripts/devstack.sh" down' EXIT
fi
set -a; source "$STATE/env"; set +a

"$ROOT/.venv/bin/python" "$ROOT/scripts/demo/cdn_invalidation.py"
echo
ROOT="$ROOT" "$ROOT/.venv/bin/python" "$ROOT/scripts/demo/mysql_pipeline.py"
echo
ROOT="$ROOT" "$ROOT/.venv/bin/python" "$ROOT/scripts/demo/dynamodb_import.py"
echo
ROOT="$ROOT" "$ROOT/.venv/bin/python" "$ROOT/scripts/demo/orders_redshift.py"
echo
ROOT="$ROOT" "$ROOT/.venv/bin/python" "$ROOT/scripts/demo/totesys_extract.py"
"$ROOT/.venv/bin/python" "$ROOT/scripts/demo/totesys_transform.py"
ROOT="$ROOT" "$ROOT/.venv/bin/python" "$ROOT/scripts/demo/totesys_warehouse.py"
