#!/usr/bin/env bash
# Python tools in project venvs, pinned: moto_server, cargo-lambda (with zig), cfn-lint,
# boto3 in .venv; the SAM CLI in .venv-sam. Reinstalls only when a requirements file changed.
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

ensure_venv .venv requirements/dev.txt
ensure_venv .venv-sam requirements/sam.txt
