#!/bin/sh
# Bulk insert and search latency of the ClickHouse backend next to the embedded store:
# starts a throw-away clickhouse-server (scripts/clickhouse-test-server.sh), runs
# bench_clickhouse with 25,000 × 512 vectors (or N DIMS given as arguments), stops it.
#   sh bench/bench_clickhouse.sh [N [DIMS]]      (after `make`; BUILD=build/release)
set -eu
cd "$(dirname "$0")/.."
build=${BUILD:-build/release}
[ -x "$build/bench/bench_clickhouse" ] || { echo "build first: make BUILD=$build" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-bench-clickhouse-XXXXXX")
trap 'sh scripts/clickhouse-test-server.sh stop "$tmp"; rm -rf "$tmp"' EXIT
url=$(sh scripts/clickhouse-test-server.sh start "$tmp")
echo "clickhouse-server $(curl -s "$url/?query=SELECT+version()") at $url"
"$build/bench/bench_clickhouse" "$url/default?table=bench_vectors" "$@"
