#!/usr/bin/env bash
# Starts a private PostgreSQL (trust auth, loopback only) under a temp dir and prints
# its URL on the last line. Usage: eval "$(bash test/support/pg.sh start DIR)"; stop with
# `bash test/support/pg.sh stop DIR` (`restart DIR` restarts it, for fault tests). The server runs as the postgres user when started as root.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ]; then echo "PostgreSQL is not installed (apt-get install -y postgresql)" >&2; exit 3; fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown postgres "$dir"
      # The postgres user must be able to reach the directory through a private temp dir.
      chmod o+x "$(dirname "$dir")"
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    as_pg "$bindir/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    echo "export UPSHIFT_TEST_PG_URL=postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  restart)
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w restart >/dev/null
    ;;
  stop)
    [ -d "$dir/data" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
    ;;
esac
