#!/usr/bin/env bash
# Python tools in project venvs, pinned: moto_server, cargo-lambda (with zig) and boto3 in
# .venv; the SAM CLI in .venv-sam; the linters (cfn-lint with the serverless rules, checkov,
# actionlint, hadolint) in .venv-lint; and the local stack's IAM evaluator, an npm package
# (scripts/local_iam). Reinstalls only when a requirements or lock file changed.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

command -v python3 >/dev/null || apt_install python3 python3-venv
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv

ensure_venv() { # DIR REQUIREMENTS
  local dir=$1 req=$2
  if [ -x "$dir/bin/python" ] && cmp -s "$req" "$dir/.installed-from"; then return 0; fi
  say "installing $(grep -v '^#' "$req" | tr '\n' ' ')into $dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$dir/.installed-from"
}

# The local stack's IAM evaluator (scripts/local_iam): an npm package, pinned by its lock.
ensure_local_iam() {
  local dir=scripts/local_iam
  if [ -d "$dir/node_modules" ] && cmp -s "$dir/package-lock.json" "$dir/node_modules/.installed-from"; then return 0; fi
  command -v npm >/dev/null || apt_install nodejs npm
  say "installing $dir (npm ci)"
  (cd "$dir" && npm ci --silent --no-audit --no-fund) && cp "$dir/package-lock.json" "$dir/node_modules/.installed-from"
}

# Side by side: each is mostly downloads and unpacking.
pids=()
ensure_local_iam & pids+=($!)
for pair in .venv:requirements/dev.txt .venv-sam:requirements/sam.txt .venv-lint:requirements/lint.txt; do
  ensure_venv "${pair%%:*}" "${pair#*:}" & pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit $failed
