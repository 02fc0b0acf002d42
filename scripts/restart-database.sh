#!/usr/bin/env bash
# restart-database.sh mariadb|postgres: stops the local server and starts it again the way
# ensure-databases.sh does — the soak's "database restarted" fault (make soak).
source "$(dirname "$0")/lib.sh"

# Until the process is gone, not only its port: start-stop-daemon takes a server still
# shutting down for a running one and would start nothing.
# The server's own process: another mariadbd (a test's TLS server, a developer's) may run too.
wait_exited() { # PID NAME SECONDS
  local i
  for i in $(seq 1 $(($3 * 10))); do
    [ -d "/proc/$1" ] || return 0
    sleep 0.1
  done
  die "$2 (pid $1) still runs after ${3}s"
}

case "${1:-}" in
  mariadb)
    pid=$(cat "$(as_root mariadb --protocol=tcp -h 127.0.0.1 -u root -N -e 'SELECT @@pid_file')")
    as_root mariadb-admin --protocol=tcp -h 127.0.0.1 -u root shutdown
    wait_exited "$pid" mariadbd 60
    ;;
  postgres)
    version=$(ls /etc/postgresql | sort -V | tail -1)
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main stop -m fast
    ;;
  *) die "usage: $0 mariadb|postgres" ;;
esac
exec "$ROOT/scripts/ensure-databases.sh"
