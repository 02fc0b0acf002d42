#!/usr/bin/env bash
# make demo: the local stack plus every pipeline on sample data, with a readable summary.
# Stops at the end whatever it started, so nothing keeps running.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

use_local_stack

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
