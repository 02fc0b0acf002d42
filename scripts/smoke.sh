#!/usr/bin/env bash
# make smoke: one acceptance run (scripts/smoke.py).
#   STACK=<name> REGION=<region>  a deployed stack, with the caller's AWS credentials
#   neither                        the local stack (started, and stopped after, if not running)
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/ensure-tools.sh"
if [ -n "${STACK:-}" ]; then
  [ -n "${REGION:-}" ] || die "STACK=$STACK needs REGION=<the stack's region>"
  exec "$ROOT/.venv/bin/python" "$ROOT/scripts/smoke.py" --stack "$STACK" --region "$REGION"
fi

# The local stack's endpoint and admin credentials, as a deployed stack's user has theirs.
use_local_stack
"$ROOT/.venv/bin/python" "$ROOT/scripts/smoke.py" --stack landfall --region "$AWS_REGION"
