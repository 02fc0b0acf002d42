#!/usr/bin/env bash
# The local stack: ./scripts/devstack.sh up | down | status
#   up     databases, moto_server, template.yaml provisioned, functions served (idempotent)
#   down   stops moto_server and the function host; nothing keeps running
#   status what runs where
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
DEVSTACK="$ROOT/target/debug/devstack"

up() {
  "$ROOT/scripts/ensure-tools.sh"
  "$ROOT/scripts/ensure-databases.sh"
  # make test's build exactly (Makefile, CLIPPY_BUILD): cargo keys its cache on the flags and
  # on the features the build resolves, and --bins alone resolves fewer (no dev-dependencies),
  # which recompiled most of the tree; the same command shares one build with make test.
  say "building the functions and devstack (after make test: nothing to compile; from nothing: about ten minutes on 2 cores)"
  mkdir -p "$STATE/logs"
  if ! CARGO_INCREMENTAL=0 RUSTC_WORKSPACE_WRAPPER=clippy-driver \
    CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__ \
    cargo build --workspace --all-targets 2>&1 | tee "$STATE/logs/build.log" \
      | { grep --line-buffered -E '^ +Compiling [a-z0-9-]+ v[0-9.]+ \(/' || true; } | sed 's/^ */  /'; then
    tail -40 "$STATE/logs/build.log"
    die "the build failed (the whole output: .devstack/logs/build.log)"
  fi
  if pid_alive "$STATE/moto.pid"; then
    say "moto_server already running (pid $(cat "$STATE/moto.pid"))"
  else
    port_open "$MOTO_PORT" && die "port $MOTO_PORT is taken by another process (set MOTO_PORT)"
    say "starting moto_server on 127.0.0.1:$MOTO_PORT"
    # moto_server, corrected where it answers otherwise than AWS (see the script).
    nohup "$ROOT/.venv/bin/python" "$ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$MOTO_PORT" >"$STATE/logs/moto.log" 2>&1 &
    echo $! >"$STATE/moto.pid"
    wait_port "$MOTO_PORT" moto_server 30
  fi
  # Local credentials go into the template's secrets, as they would be in AWS.
  "$DEVSTACK" provision --endpoint "http://127.0.0.1:$MOTO_PORT" --invoke-address "127.0.0.1:$LAMBDA_PORT" \
    --secret "MysqlSecret={\"host\":\"127.0.0.1\",\"port\":3306,\"username\":\"root\",\"password\":\"\",\"dbname\":\"$MYSQL_DATABASE\"}" \
    --secret "TotesysSecret={\"host\":\"127.0.0.1\",\"port\":5432,\"username\":\"postgres\",\"password\":\"\",\"dbname\":\"totesys\"}" \
    --secret "WarehouseSecret={\"host\":\"127.0.0.1\",\"port\":5432,\"username\":\"postgres\",\"password\":\"\",\"dbname\":\"$WAREHOUSE_DATABASE\"}" \
    --parameter ExtractSettleSeconds=2 \
    --parameter DynamodbRetireAfterSeconds=0 \
    --extra-env "MYSQL_URL=mysql://root@127.0.0.1:3306/$MYSQL_DATABASE" \
    --extra-env "POSTGRES_URL=postgres://postgres@127.0.0.1:5432"
  # The loader applies the warehouse migrations itself; the database must exist.
  psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$WAREHOUSE_DATABASE'" | grep -q 1 \
    || { say "creating the local warehouse database ($WAREHOUSE_DATABASE)"; createdb -h 127.0.0.1 -U postgres "$WAREHOUSE_DATABASE"; }
  # P4's source, as the TotesysSecret names it: a small totesys where there is none yet
  # (make demo seeds the full one).
  psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'totesys'" | grep -q 1 \
    || { say "seeding a small local totesys (P4's source)"
         PGHOST=127.0.0.1 PGUSER=postgres "$ROOT/target/debug/totesys" seed --sales-orders 300 --purchase-orders 100 >/dev/null; }
  say "applying sql/mysql to the local MariaDB (db-init)"
  ( set -a; source "$STATE/env"; set +a
    MYSQL_SECRET_ARN="$MYSQL_SECRET" SCRIPTS_DIR="$ROOT/sql/mysql" "$ROOT/target/debug/db-init" >>"$STATE/logs/db-init.log" 2>&1 ) \
    || die "db-init failed: see .devstack/logs/db-init.log"
  if pid_alive "$STATE/serve.pid"; then
    # New binaries or a changed template: restart so functions run what was just built.
    kill "$(cat "$STATE/serve.pid")" && sleep 0.5
  fi
  port_open "$LAMBDA_PORT" && die "port $LAMBDA_PORT is taken by another process (set LAMBDA_PORT)"
  nohup "$DEVSTACK" serve >"$STATE/logs/devstack.log" 2>&1 &
  echo $! >"$STATE/serve.pid"
  wait_port "$LAMBDA_PORT" "devstack serve" 30
  # As after a deploy: the orders-loader applies sql/redshift through the Data API, which
  # the devstack serves on the local PostgreSQL's `redshift` database.
  say "applying sql/redshift through the orders-loader (migrate)"
  "$DEVSTACK" invoke orders-loader --data-file "$ROOT/events/orders-loader/migrate.json" >>"$STATE/logs/migrate.log" 2>&1 \
    || die "the orders-loader's migrate failed: see .devstack/logs/migrate.log and orders-loader.log"
  say "local stack up: . .devstack/env   (function logs in .devstack/logs/)"
}

stop() { # PIDFILE NAME
  if pid_alive "$1"; then
    local pid; pid=$(cat "$1")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    say "stopped $2"
  fi
  rm -f "$1"
}

down() {
  stop "$STATE/serve.pid" "devstack serve (and its functions)"
  stop "$STATE/moto.pid" moto_server
}

status() {
  local name pidfile port
  for entry in "moto_server:moto.pid:$MOTO_PORT" "devstack serve:serve.pid:$LAMBDA_PORT"; do
    IFS=: read -r name pidfile port <<<"$entry"
    if pid_alive "$STATE/$pidfile"; then
      printf '%-16s running  pid %-7s 127.0.0.1:%s\n' "$name" "$(cat "$STATE/$pidfile")" "$port"
    else
      printf '%-16s stopped\n' "$name"
    fi
  done
  for entry in "MariaDB:3306" "PostgreSQL:5432"; do
    IFS=: read -r name port <<<"$entry"
    if port_open "$port"; then printf '%-16s up       127.0.0.1:%s\n' "$name" "$port"; else printf '%-16s down\n' "$name"; fi
  done
  [ -f "$STATE/env" ] && printf '%-16s %s\n' "env file" ".devstack/env"
  return 0
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status" ;;
esac
