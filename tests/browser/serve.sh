# Sourced by tests/browser/run.sh: the one place the browser suite starts `vdx serve`, so
# that token handling is set once for every flow. Every server gets the suite's access
# token ($VDX_TOKEN, exported for flows.mjs, which trades it for the cookie the way a
# user's browser does with the printed URL).
#   serve LABEL COLLECTION [vdx serve options]: starts vdx serve for COLLECTION on a free
#   port (in the calling shell, so that its cleanup knows the pid);
#   url_of LABEL: waits for it and prints its base URL (http://127.0.0.1:PORT/, no token).
VDX_TOKEN=${VDX_TOKEN:-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')}
export VDX_TOKEN
serve() {
    label=$1 collection=$2; shift 2
    "$build/vdx" serve --data "$tmp/data" --collection "$collection" --model "$shared/fixtures/clip-tiny" \
        --port 0 "$@" > "$tmp/$label.out" 2> "$tmp/$label.err" &
    pids="$pids $!"
}
url_of() {
    for _ in $(seq 600); do grep -q 'serving' "$tmp/$1.out" 2>/dev/null && break; sleep 0.1; done
    sed -n 's/.* at \(http:[^ ?]*\)?token=.*$/\1/p' "$tmp/$1.out"
}
