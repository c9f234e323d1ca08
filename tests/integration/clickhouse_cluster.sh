#!/bin/sh
# A collection on a ClickHouse cluster (docs/clickhouse.md, "A cluster"): starts Debian's
# ZooKeeper (the coordinator of ON CLUSTER DDL) and two clickhouse-server 18.16 on loopback,
# the two shards of cluster `vdx_two`, then proves through the CLI (`vdx ingest vectors`,
# `vdx search --vector`) that
#   - ON CLUSTER DDL makes per-shard tables + Distributed tables on both servers, rows are
#     spread over both shards, metadata columns reach every table;
#   - searches (plain, --exclude, --where) equal the embedded store's (ids in order,
#     distances within 1e-6): the global top k;
#   - per-shard DDL (&shards=, no coordinator used) gives the same;
#   - an ingest interrupted by a shard restart, run again, ends with every id once;
#   - the store suite (tests/test_store.c) passes with its collections on the cluster;
#   - a shard that is down fails a search with an error naming it, and no results.
set -u
cd "$(dirname "$0")/../.." || exit 2
B=${VDX_BUILD:-build/release}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
VDX="$B/vdx"
SYNTH="$B/tools/synth_npy"
SHARED=${VDX_SHARED:-../shared}
MODEL="$SHARED/fixtures/clip-tiny"
failed=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1: $2"; failed=1; }
skip_all() {
    if [ "${CI:-}" = true ]; then echo "not ok - $1 (CI=true)"; exit 1; fi
    echo "skip - clickhouse cluster: $1"; exit 0
}

[ -e "$MODEL/config.json" ] || skip_all "$MODEL not found"
command -v clickhouse-server > /dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] ||
    skip_all "clickhouse-server is not installed (scripts/deps.sh --test)"
ZK_JAR=/usr/share/java/zookeeper.jar
{ command -v java > /dev/null 2>&1 && [ -f "$ZK_JAR" ]; } ||
    skip_all "zookeeper is not installed (scripts/deps.sh --test)"
for exe in "$VDX" "$SYNTH"; do
    [ -x "$exe" ] || { echo "not ok - build: $exe is missing (run make)"; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-chcluster.XXXXXX")
zk_pid="" ingest_pid=""
cleanup() {
    [ -z "$ingest_pid" ] || kill "$ingest_pid" 2>/dev/null
    sh scripts/clickhouse-test-server.sh stop "$tmp/s1"
    sh scripts/clickhouse-test-server.sh stop "$tmp/s2"
    [ -z "$zk_pid" ] || kill "$zk_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

used=""
pick() { # pick VAR: VAR=a free port, none picked before
    p=$(sh scripts/free-port.sh $used); used="$used $p"; eval "$1=$p"
}
pick zk
mkdir -p "$tmp/zk"
printf 'tickTime=2000\ndataDir=%s/zk\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n' \
    "$tmp" "$zk" > "$tmp/zoo.cfg"
java -Xmx128m -cp "$ZK_JAR" org.apache.zookeeper.server.quorum.QuorumPeerMain "$tmp/zoo.cfg" \
    > "$tmp/zk.log" 2>&1 &
zk_pid=$!

start_shard() { # start_shard N
    eval "h=\$h$1 t=\$t$1"
    CH_HTTP_PORT=$h CH_TCP_PORT=$t sh scripts/clickhouse-test-server.sh start "$tmp/s$1" \
        > /dev/null 2> "$tmp/start$1.err"
}
# Each shard's ports are written into both servers' config, so they are fixed before either
# starts: when one is taken meanwhile (the start script says why), all four are chosen again.
for attempt in 1 2 3; do
    pick h1; pick t1; pick h2; pick t2
    CH_EXTRA_CONFIG="<remote_servers><vdx_two>
  <shard><replica><host>127.0.0.1</host><port>$t1</port></replica></shard>
  <shard><replica><host>127.0.0.1</host><port>$t2</port></replica></shard>
</vdx_two></remote_servers>
<zookeeper><node><host>127.0.0.1</host><port>$zk</port></node></zookeeper>
<distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>"
    export CH_EXTRA_CONFIG
    start_shard 1 & start_shard 2; s2=$?; wait $!; s1=$?
    [ $s1 -eq 0 ] && [ $s2 -eq 0 ] && break
    sh scripts/clickhouse-test-server.sh stop "$tmp/s1"; sh scripts/clickhouse-test-server.sh stop "$tmp/s2"
    if [ $attempt -eq 3 ] || ! grep -qi 'address already in use' "$tmp/start1.err" "$tmp/start2.err"; then
        echo "not ok - two clickhouse-server shards did not start: $(cat "$tmp/start1.err" "$tmp/start2.err" | tr '\n' ' ')"
        exit 1
    fi
    echo "# attempt $attempt: a port was taken ($(cat "$tmp/start1.err" "$tmp/start2.err" | tr '\n' ' ')); new ports"
done
q() { curl -s "http://127.0.0.1:$1/" --data-binary "$2"; }
for _ in $(seq 300); do [ "$(q "$h1" "SELECT count() FROM system.zookeeper WHERE path = '/'" 2>/dev/null)" -ge 1 ] 2>/dev/null && break; sleep 0.1; done
ok "ZooKeeper and two clickhouse-server shards started (HTTP $h1, $h2)"

S="--synth-dim=32 --synth-clusters=40"
"$SYNTH" "$tmp/v.npy" "$tmp/ids.txt" 4000 $S > /dev/null &&
"$SYNTH" "$tmp/q.npy" "$tmp/qids.txt" 6 $S --first 900000 > /dev/null &&
"$SYNTH" "$tmp/big.npy" "$tmp/big.txt" 60000 $S > /dev/null || { echo "not ok - synth_npy"; exit 1; }
awk 'BEGIN { print "id\tbucket" } { print $1 "\t" (NR - 1) % 10 }' "$tmp/ids.txt" > "$tmp/meta.tsv"
"$VDX" ingest vectors "$tmp/v.npy" --ids "$tmp/ids.txt" --meta "$tmp/meta.tsv" --model "$MODEL" \
    --data "$tmp/embedded" > /dev/null 2>&1 || { echo "not ok - embedded ingest"; exit 1; }
"$VDX" ingest vectors "$tmp/big.npy" --ids "$tmp/big.txt" --model "$MODEL" --collection big \
    --data "$tmp/embedded" > /dev/null 2>&1 || { echo "not ok - embedded ingest (big)"; exit 1; }

search() { # search DATA STORE OUT [args...]: ids and distances, one line per hit
    data=$1 store=$2 out=$3; shift 3
    VDX_STORE="$store" "$VDX" search --vector "$tmp/q.npy" --model "$MODEL" --data "$data" -k 9 "$@" \
        > "$out.json" 2> "$out.err"
    sed -n 's/.*"row":\([0-9]*\),"id":"\([^"]*\)".*"dist":\([-0-9.e]*\).*/\1 \2 \3/p' "$out.json" > "$out"
}
same_hits() { # same_hits A B: same rows and ids in order, distances within 1e-6
    [ -s "$1" ] && [ "$(wc -l < "$1")" = "$(wc -l < "$2")" ] &&
        paste -d ' ' "$1" "$2" | awk '$1 != $4 || $2 != $5 || ($3 - $6 > 1e-6) || ($6 - $3 > 1e-6) { bad = 1 } END { exit bad }'
}
compare() { # compare NAME STORE [DATA] [args...]: the cluster's hits equal the embedded store's
    name=$1 store=$2 data=$3; shift 3
    search "$tmp/embedded" "" "$tmp/e" "$@"
    search "$data" "$store" "$tmp/c" "$@"
    if same_hits "$tmp/e" "$tmp/c"; then
        ok "$name: the embedded store's $(wc -l < "$tmp/e") hits, in order"
    else
        not_ok "$name" "embedded [$(head -3 "$tmp/e" | tr '\n' ' ')] cluster [$(head -3 "$tmp/c" | tr '\n' ' ')] $(head -c 300 "$tmp/c.err")"
    fi
}

# ---- ON CLUSTER DDL ----
U="http://127.0.0.1:$h1/default?cluster=vdx_two&table=photos"
if VDX_STORE="$U" "$VDX" ingest vectors "$tmp/v.npy" --ids "$tmp/ids.txt" --meta "$tmp/meta.tsv" \
       --model "$MODEL" --data "$tmp/c1" > "$tmp/out" 2>&1 && grep -q "4000 ingested" "$tmp/out"; then
    ok "ingest vectors into cluster vdx_two (ON CLUSTER DDL): 4000 rows"
else
    not_ok "ingest into the cluster" "$(tail -3 "$tmp/out")"
fi
n1=$(q "$h1" "SELECT count() FROM photos_shard"); n2=$(q "$h2" "SELECT count() FROM photos_shard")
if [ "${n1:-0}" -gt 1000 ] && [ "${n2:-0}" -gt 1000 ] && [ $((n1 + n2)) = 4000 ]; then
    ok "rows spread over both shards by cityHash64(id): $n1 + $n2"
else
    not_ok "rows per shard" "'$n1' '$n2'"
fi
e1=$(q "$h1" "EXISTS TABLE photos"); e2=$(q "$h2" "EXISTS TABLE photos")
i2=$(q "$h2" "SELECT engine FROM system.tables WHERE database = 'default' AND name = 'photos_info'")
c2=$(q "$h2" "SELECT count() FROM system.columns WHERE database = 'default' AND table IN ('photos', 'photos_shard') AND name = 'bucket'")
if [ "$e1$e2" = 11 ] && [ "$i2" = Distributed ] && [ "$c2" = 2 ]; then
    ok "both servers hold the Distributed tables; the metadata column reached shard and Distributed tables"
else
    not_ok "tables on the second server" "exists '$e1' '$e2', photos_info engine '$i2', bucket columns '$c2'"
fi
compare "search on the cluster (ON CLUSTER)" "$U" "$tmp/c1"
compare "search on the cluster with --exclude" "$U" "$tmp/c1" --exclude "$(head -40 "$tmp/ids.txt" | tr '\n' ',' | sed 's/,$//')"
compare "search on the cluster with --where" "$U" "$tmp/c1" --where "bucket = '3'"
VDX_STORE="$U" "$VDX" ingest vectors "$tmp/v.npy" --ids "$tmp/ids.txt" --model "$MODEL" --data "$tmp/c1" > "$tmp/out" 2>&1
rows=$(q "$h1" "SELECT count(), uniqExact(id) FROM photos")
if grep -q "0 ingested.*4000 skipped" "$tmp/out" && [ "$rows" = "$(printf '4000\t4000')" ]; then
    ok "a second ingest into the cluster stores nothing twice"
else
    not_ok "second ingest" "$(tail -1 "$tmp/out") rows '$rows'"
fi
if VDX_STORE="$U" "$VDX" info --data "$tmp/c1" > "$tmp/info" 2>&1 && grep -q "vdx_two" "$tmp/info" &&
   grep -q "ON CLUSTER" "$tmp/info"; then
    ok "vdx info names the cluster and its DDL"
else
    not_ok "vdx info" "$(head -c 400 "$tmp/info")"
fi

# ---- per-shard DDL: the same tables made on each shard's endpoint ----
P="clickhouse://127.0.0.1:$h2/default?cluster=vdx_two&table=pershard&shards=127.0.0.1:$h1,127.0.0.1:$h2"
if VDX_STORE="$P" "$VDX" ingest vectors "$tmp/v.npy" --ids "$tmp/ids.txt" --meta "$tmp/meta.tsv" \
       --model "$MODEL" --data "$tmp/c2" > "$tmp/out" 2>&1 && grep -q "4000 ingested" "$tmp/out" &&
   [ "$(q "$h1" "EXISTS TABLE pershard_shard")$(q "$h2" "EXISTS TABLE pershard_shard")" = 11 ]; then
    ok "per-shard DDL (&shards=): tables on both shards, 4000 rows"
else
    not_ok "per-shard DDL" "$(tail -3 "$tmp/out")"
fi
compare "search on the cluster (per-shard DDL)" "$P" "$tmp/c2" --where "bucket != '7'"

# ---- an ingest interrupted by a shard restart ----
G="http://127.0.0.1:$h1/default?cluster=vdx_two&table=big"
VDX_STORE="$G" "$VDX" ingest vectors "$tmp/big.npy" --ids "$tmp/big.txt" --model "$MODEL" \
    --collection big --data "$tmp/c3" > "$tmp/ingest1.out" 2>&1 &
ingest_pid=$!
for _ in $(seq 200); do
    [ "$(q "$h1" "SELECT count() FROM big_shard" 2>/dev/null)" -gt 0 ] 2>/dev/null && break; sleep 0.05
done
before=$(q "$h1" "SELECT count() FROM big_shard")
sh scripts/clickhouse-test-server.sh stop "$tmp/s2"
sleep 1
start_shard 2 || not_ok "restarting shard 2" "$(cat "$tmp/start2.err")"
wait "$ingest_pid"; first=$?; ingest_pid=""
VDX_STORE="$G" "$VDX" ingest vectors "$tmp/big.npy" --ids "$tmp/big.txt" --model "$MODEL" \
    --collection big --data "$tmp/c3" > "$tmp/ingest2.out" 2>&1
second=$?
rows=$(q "$h1" "SELECT count(), uniqExact(id) FROM big")
if [ $second = 0 ] && [ "$rows" = "$(printf '60000\t60000')" ] && [ "${before:-0}" -lt 30000 ]; then
    ok "an ingest interrupted by a shard restart (first run exit $first: $(grep -o 'shard 2 ([^)]*) is unreachable' "$tmp/ingest1.out" | head -n 1 || echo finished); $before rows on shard 1 at the stop), run again: 60000 rows, 60000 ids"
else
    not_ok "interrupted ingest" "rows '$rows', at stop '$before', exits $first/$second: $(tail -1 "$tmp/ingest1.out") / $(tail -1 "$tmp/ingest2.out")"
fi
compare "search after the interrupted ingest" "$G" "$tmp/c3" --collection big

# ---- the store suite (tests/test_store.c) with every collection on the cluster ----
if [ -x "$B/tests/test_store" ]; then
    VDX_TEST_STORE_URL="http://127.0.0.1:$h1/default?cluster=vdx_two" "$B/tests/test_store" \
        > "$tmp/test_store.log" 2>&1
    status=$?
    grep '^\(ok\|not ok\|skip\) - ' "$tmp/test_store.log" | sed 's/^\(ok\|not ok\|skip\) - /&test_store on the cluster: /'
    [ $status -eq 0 ] || { failed=1; grep -q '^not ok' "$tmp/test_store.log" || echo "not ok - test_store on the cluster exited $status"; }
else
    not_ok "test_store on the cluster" "$B/tests/test_store is not built (run make)"
fi

# ---- a shard that is down ----
sh scripts/clickhouse-test-server.sh stop "$tmp/s2"
search "$tmp/c1" "$U" "$tmp/down"
if [ ! -s "$tmp/down" ] && grep -q "shard 2 (127.0.0.1:$t2) is unreachable" "$tmp/down.err" &&
   grep -q "no partial result" "$tmp/down.err"; then
    ok "a shard that is down: the search fails naming it ($(head -c 160 "$tmp/down.err")...)"
else
    not_ok "a shard that is down" "$(head -c 300 "$tmp/down.json") $(head -c 300 "$tmp/down.err")"
fi
[ $failed -eq 0 ]
