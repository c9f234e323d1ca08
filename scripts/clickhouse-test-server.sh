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

free_port() { # a loopback TCP port nobody listens on (curl exit 7: connection refused)
    while :; do
        p=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
        rc=0
        curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$p/" 2>/dev/null || rc=$?
        if [ $rc -eq 7 ]; then echo "$p"; return; fi
    done
}

case "$action" in
start)
    [ -n "$server" ] || { echo "clickhouse-server is not installed (scripts/deps.sh --test installs it)" >&2; exit 3; }
    mkdir -p "$dir/log" "$dir/data/tmp" "$dir/data/user_files"
    dir=$(cd "$dir" && pwd)
    http=${CH_HTTP_PORT:-$(free_port)}; tcp=${CH_TCP_PORT:-$(free_port)}; inter=$(free_port)
    while [ "$tcp" = "$http" ]; do tcp=$(free_port); done
    while [ "$inter" = "$http" ] || [ "$inter" = "$tcp" ]; do inter=$(free_port); done
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
    "$server" --config-file="$dir/config.xml" > "$dir/log/stdout.log" 2>&1 &
    echo $! > "$dir/server.pid"
    i=0
    while [ "$(curl -s "http://127.0.0.1:$http/ping" 2>/dev/null)" != "Ok." ]; do
        i=$((i + 1))
        if [ $i -gt 900 ] || ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
            echo "clickhouse-server did not answer /ping on port $http within 90 s; see $dir/log/" >&2
            kill "$(cat "$dir/server.pid")" 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
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
