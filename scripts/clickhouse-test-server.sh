#!/bin/sh
# Starts or stops a throw-away ClickHouse server for tests and benchmarks: loopback only,
# free ports, all data under DIR, the package's users.xml (user `default`, no password) plus
# user `vdx_test` with password `s3cret-pw` (loopback only), for authenticated-store tests.
#   scripts/clickhouse-test-server.sh start DIR   prints the store URL (http://127.0.0.1:PORT)
#   scripts/clickhouse-test-server.sh stop DIR    stops the server started in DIR (by pid)
# For a cluster (tests/integration/clickhouse_cluster.sh): $CH_HTTP_PORT and $CH_TCP_PORT fix
# the ports, $CH_EXTRA_CONFIG (an XML fragment) is added to the server's config.
# Exit status 3 from start: clickhouse-server is not installed (callers skip).
set -eu
action=${1:-}; dir=${2:-}
[ -n "$action" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

server=$(command -v clickhouse-server || true)
[ -n "$server" ] || { [ -x /usr/sbin/clickhouse-server ] && server=/usr/sbin/clickhouse-server; } || true

here=$(dirname "$0")
free_port() { sh "$here/free-port.sh" "$@"; }

case "$action" in
start)
    [ -n "$server" ] || { echo "clickhouse-server is not installed (scripts/deps.sh --test installs it)" >&2; exit 3; }
    mkdir -p "$dir/log" "$dir/data/tmp" "$dir/data/user_files"
    dir=$(cd "$dir" && pwd)
    attempt=1
    while :; do
        http=${CH_HTTP_PORT:-$(free_port)}; tcp=${CH_TCP_PORT:-$(free_port "$http")}
        inter=$(free_port "$http" "$tcp")
        # the package's users plus one with a password, for the tests of authenticated stores
        sed 's|^\( *\)</users>|\1<vdx_test><password>s3cret-pw</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></vdx_test>\n&|' \
            /etc/clickhouse-server/users.xml > "$dir/users.xml"
        cat > "$dir/config.xml" <<XML
<yandex>
  <logger><level>warning</level><log>$dir/log/server.log</log><errorlog>$dir/log/error.log</errorlog></logger>
  <http_port>$http</http_port><tcp_port>$tcp</tcp_port><interserver_http_port>$inter</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$dir/data/</path><tmp_path>$dir/data/tmp/</tmp_path><user_files_path>$dir/data/user_files/</user_files_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>104857600</mark_cache_size>
${CH_EXTRA_CONFIG:-}
</yandex>
XML
        rm -f "$dir/log/error.log"
        "$server" --config-file="$dir/config.xml" > "$dir/log/stdout.log" 2>&1 &
        echo $! > "$dir/server.pid"
        i=0 up=1
        while [ "$(curl -s "http://127.0.0.1:$http/ping" 2>/dev/null)" != "Ok." ]; do
            i=$((i + 1))
            if [ $i -gt 900 ] || ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then up=0; break; fi
            sleep 0.1
        done
        [ $up -eq 1 ] && break
        kill "$(cat "$dir/server.pid")" 2>/dev/null || true
        wait 2>/dev/null || true
        # why, in the caller's output (the directory may be gone when someone reads it)
        why=$(grep -h -m 3 -i 'exception\|error' "$dir/log/error.log" "$dir/log/stdout.log" 2>/dev/null | cut -c1-300 || true)
        # a port taken between the choice and the bind: again on new ports, unless they were given
        if [ $attempt -lt 3 ] && [ -z "${CH_HTTP_PORT:-}${CH_TCP_PORT:-}" ] && echo "$why" | grep -qi 'address already in use'; then
            attempt=$((attempt + 1)); continue
        fi
        if [ $i -gt 900 ]; then echo "clickhouse-server did not answer /ping on port $http within 90 s; see $dir/log/" >&2
        else echo "clickhouse-server exited before answering /ping on port $http; see $dir/log/" >&2; fi
        [ -z "$why" ] || printf '%s\n' "$why" | sed 's/^/  server log: /' >&2
        exit 1
    done
    echo "http://127.0.0.1:$http"
    ;;
stop)
    [ -f "$dir/server.pid" ] || exit 0
    pid=$(cat "$dir/server.pid")
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/server.pid"
    ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
