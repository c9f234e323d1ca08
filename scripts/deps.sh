#!/bin/sh
# Installs the Debian packages vdx needs to build and test, and only those missing,
# so that `make test` and `make demo` work on a fresh Debian 12 machine and cost
# nothing when everything is already there. Prints the apt line it runs.
set -eu
want="build-essential pkg-config ca-certificates curl
 libopenblas-dev libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev libutf8proc-dev
 libcjson-dev libsqlite3-dev libcurl4-openssl-dev libmicrohttpd-dev libzip-dev zlib1g-dev libssl-dev
 valgrind zip libhnswlib-dev wordnet-base libdnnl-dev"
case "${1:-}" in
  # fonts-wqy-zenhei: Chinese prompts render as text, not boxes, in the browser screenshots
  # clang: the libFuzzer targets (tests/integration/fuzz_seeds.sh builds them and replays their seeds)
  --test) want="$want clickhouse-server zookeeper chromium groff-base openssl fonts-wqy-zenhei fontconfig clang" ;;
  # Pillow, to remake tests/golden/thumbnails (tests/tools/thumbnail_goldens.py); pandas,
  # to compare the TSV reader with its C parser (tests/tools/tsv_vs_pandas.py)
  --goldens) want="$want python3-pil python3-pandas" ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js and npm for the browser tests: any installation will do (some machines carry a
# nodejs package that bundles npm and conflicts with Debian's npm package).
if [ "${1:-}" = --test ] && ! { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }; then
  missing="$missing nodejs npm"
fi
if [ -z "$missing" ]; then
  echo "deps: all Debian packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "deps: installing:$missing"
echo "+ $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends$missing"
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
