# Shared helpers for the scripts (sourced, not run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.devstack"
MOTO_PORT="${MOTO_PORT:-5000}"
LAMBDA_PORT="${LAMBDA_PORT:-9000}"
MYSQL_DATABASE="${MYSQL_DATABASE:-landfall}"
WAREHOUSE_DATABASE="${WAREHOUSE_DATABASE:-warehouse}"
export SAM_CLI_TELEMETRY=0

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  if [ ! -f "$STATE/.apt-updated" ]; then
    as_root apt-get update -qq
    mkdir -p "$STATE" && touch "$STATE/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# port_open PORT: something listens on 127.0.0.1:PORT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # PORT NAME SECONDS
  local i
  for i in $(seq 1 $((${3:-30} * 10))); do
    port_open "$1" && return 0
    sleep 0.1
  done
  die "$2 did not listen on 127.0.0.1:$1 within ${3:-30}s"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The running local stack, or one started now and stopped when the calling script exits; its
# endpoint, credentials and resource names exported (.devstack/env).
use_local_stack() {
  if pid_alive "$STATE/serve.pid" && pid_alive "$STATE/moto.pid"; then
    say "using the running local stack"
  else
    "$ROOT/scripts/devstack.sh" up
    trap '"$ROOT/scripts/devstack.sh" down' EXIT
  fi
  set -a; source "$STATE/env"; set +a
}
