#!/usr/bin/env bash
# Runs "$@" inside the current (private) network namespace with loopback up and, when the
# PostgreSQL server binaries are here and we are root, a throwaway PostgreSQL server whose URL
# is exported as NAS_TEST_POSTGRES_URL (NAS_NO_POSTGRES=1 skips the server).  The server is stopped by its PID whatever happens.
set -euo pipefail
ip link set lo up

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
pgdir=""
cleanup() {
  if [ -n "$pgdir" ] && [ -f "$pgdir/data/postmaster.pid" ]; then
    pid=$(head -n 1 "$pgdir/data/postmaster.pid")
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if [ -n "$pgdir" ]; then rm -rf "$pgdir"; fi
}
trap cleanup EXIT

if [ -z "${NAS_NO_POSTGRES:-}" ] && [ -n "$pgbin" ] && [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
  pgdir=$(mktemp -d /tmp/nas-pg.XXXXXX)
  chown postgres "$pgdir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  runuser -u postgres -- "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres >"$pgdir/initdb.log" 2>&1
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k $pgdir -c fsync=off -c max_connections=200" start >/dev/null
  export NAS_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
  echo "in-netns: PostgreSQL on 127.0.0.1:$port" >&2
elif [ -z "${NAS_NO_POSTGRES:-}" ]; then
  echo "in-netns: no PostgreSQL server binaries (or not root); PostgreSQL tests will be skipped" >&2
fi
"$@"
