#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite, in its own data folder, listening on
# a Unix socket only (no TCP port to collide with anything else on the machine).
#
#   eval "$(.ci/postgres.sh start [DIR])"   # installs Debian's postgresql if missing,
#                                           # prints `export OCRBATCH_TEST_PG_URL=...`
#   .ci/postgres.sh stop [DIR]
#
# Works as root on a fresh Debian machine: the server runs as the `postgres` user that
# the package creates. Debian keeps the server binaries in /usr/lib/postgresql/NN/bin,
# outside PATH, so they are looked up there.
set -euo pipefail

dir="${2:-${OCRBATCH_PG_DIR:-/tmp/ocrbatch-pg-$(id -u)}}"

find_bin() {
    local b
    b="$(command -v pg_ctl 2>/dev/null || true)"
    if [ -n "$b" ]; then dirname "$(readlink -f "$b")"; return; fi
    b="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    [ -n "$b" ] && [ -x "$b/pg_ctl" ] && echo "$b"
}

as_pg() {
    # initdb and postgres refuse to run as root: run them as the postgres user
    # (runuser lives in /usr/sbin, which a minimal PATH may lack).
    if [ "$(id -u)" = 0 ]; then
        "$(command -v runuser || echo /usr/sbin/runuser)" -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin
    bin="$(find_bin || true)"
    if [ -z "$bin" ]; then
        echo "installing Debian's postgresql..." >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends postgresql >&2
        bin="$(find_bin)"
    fi
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if ! as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c max_connections=200" \
            start >/dev/null
    fi
    if [ "$(as_pg "$bin/psql" -h "$dir" -U postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='ocrbatch'")" != 1 ]; then
        as_pg "$bin/psql" -q -h "$dir" -U postgres -c "CREATE ROLE ocrbatch LOGIN" >/dev/null
        as_pg "$bin/psql" -q -h "$dir" -U postgres -c "CREATE DATABASE ocrbatch_test OWNER ocrbatch" >/dev/null
    fi
    echo "export OCRBATCH_TEST_PG_URL='postgresql+psycopg://ocrbatch@/ocrbatch_test?host=$dir'"
}

stop() {
    local bin
    bin="$(find_bin || true)"
    if [ -n "$bin" ] && [ -f "$dir/data/PG_VERSION" ]; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
