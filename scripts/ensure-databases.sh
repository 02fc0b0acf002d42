#!/usr/bin/env bash
# MariaDB on 127.0.0.1:3306 (root, no password) and PostgreSQL on 127.0.0.1:5432 (trust):
# started when stopped, installed from Debian's packages when missing.
source "$(dirname "$0")/lib.sh"

ensure_mariadb() {
  port_open 3306 && return 0
  if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
    say "installing MariaDB (Debian mariadb-server)"
    apt_install mariadb-server
    local fresh=1
  fi
  say "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  # By its pid file too: another mariadbd (a test's TLS server) is not this one.
  as_root start-stop-daemon --start --oknodo --background --pidfile /run/mysqld/mysqld.pid --exec /usr/sbin/mariadbd -- --user=mysql
  wait_port 3306 MariaDB 60
  if [ "${fresh:-0}" = 1 ]; then
    # A fresh install lets root in by socket only; local development uses TCP without a password.
    as_root mariadb -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES;"
  fi
}

ensure_postgres() {
  port_open 5432 && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    say "installing PostgreSQL (Debian postgresql)"
    apt_install postgresql
    local fresh=1
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -1)
  if [ "${fresh:-0}" = 1 ]; then
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    grep -q "landfall" "$hba" || sed -i "1i host all all 127.0.0.1/32 trust # landfall local development" "$hba"
  fi
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port 5432 PostgreSQL 60
}

# MySQL 8's default sql_mode, so the tests run under what RDS MySQL enforces: MariaDB's own
# default lacks ONLY_FULL_GROUP_BY, NO_ZERO_DATE and NO_ZERO_IN_DATE (MySQL 8.0 reference,
# "Server SQL Modes"). Set on every run: a restart forgets it, and procedures keep the mode
# they were created under.
strict_mariadb() {
  as_root mariadb --protocol=tcp -h 127.0.0.1 -u root -e "SET GLOBAL sql_mode = 'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
}

# The TLS tests start a MariaDB of their own with a certificate openssl makes.
command -v openssl >/dev/null || apt_install openssl
ensure_mariadb
strict_mariadb
ensure_postgres
