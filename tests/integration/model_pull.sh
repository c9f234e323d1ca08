#!/bin/sh
# vdx model pull/path/info against the loopback hub (tests/tools/fileserver serving
# ../shared/fixtures/clip-tiny as openai/clip-vit-base-patch32): the huggingface_hub cache
# layout, resolution by repo id, a second pull that downloads nothing, resume of a partial
# file with an HTTP Range, refusal of a download whose sha256 differs, retries after 503,
# and the pytorch_model.bin fallback of a repo without model.safetensors.
set -u
build=${VDX_BUILD:-build/release}
vdx=$build/vdx
server=$build/tools/fileserver
shared=${VDX_SHARED:-../shared}
fixture=$shared/fixtures/clip-tiny
repo=openai/clip-vit-base-patch32
failed=0

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1: $2"; failed=1; }
check() { # check NAME CONDITION-COMMAND... (runs the command; ok if it succeeds)
    name=$1; shift
    if "$@"; then ok "$name"; else not_ok "$name" "$(echo "$*" | cut -c1-200)"; fi
}

for need in "$vdx" "$server"; do
    if [ ! -x "$need" ]; then echo "not ok - model pull: $need is not built (run make)"; exit 1; fi
done
if [ ! -d "$fixture" ]; then
    if [ "${CI:-}" = true ]; then echo "not ok - model pull: $fixture missing"; exit 1; fi
    echo "skip - model pull: $fixture not found"; exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-model-pull-XXXXXX")
server_pid=
stop_server() { [ -z "$server_pid" ] || { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; }; server_pid=; }
trap 'stop_server; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT INT TERM

# A repo without model.safetensors, to test the pytorch_model.bin fallback.
mkdir "$tmp/bin-repo"
for f in config.json pytorch_model.bin vocab.json merges.txt preprocessor_config.json; do
    ln -s "$(cd "$fixture" && pwd)/$f" "$tmp/bin-repo/$f"
done

start_server() { # start_server [extra fileserver options]
    rm -f "$tmp/port"
    "$server" --hub "$repo=$fixture" --hub "other/tiny-bin=$tmp/bin-repo" \
        --port-file "$tmp/port" --log "$tmp/server.log" "$@" 2>>"$tmp/server.err" &
    server_pid=$!
    i=0
    # up to 60 s: a loaded machine is slow to start a server, never a reason to fail
    while [ ! -s "$tmp/port" ] && [ $i -lt 1200 ] && kill -0 "$server_pid" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
    [ -s "$tmp/port" ] || { echo "not ok - fileserver $*: did not start: $(cat "$tmp/server.err")"; exit 1; }
    export HF_ENDPOINT="http://127.0.0.1:$(cat "$tmp/port")"
}

export HF_HOME="$tmp/hf"
unset HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_TOKEN VDX_MODEL
cache="$HF_HOME/hub/models--openai--clip-vit-base-patch32"
sha=$(sha256sum "$fixture/model.safetensors" | cut -d' ' -f1)
size=$(wc -c < "$fixture/model.safetensors")
start_server

# 1. A fresh pull: the exact huggingface_hub layout.
: > "$tmp/server.log"
if "$vdx" model pull "$repo" > "$tmp/pull.out" 2> "$tmp/pull.err"; then
    ok "pull into an empty cache"
else
    not_ok "pull into an empty cache" "$(tail -3 "$tmp/pull.err")"
fi
commit=$(cat "$cache/refs/main" 2>/dev/null)
snapshot="$cache/snapshots/$commit"
check "refs/main holds a 40-hex commit" sh -c "echo '$commit' | grep -qE '^[0-9a-f]{40}$'"
check "pull prints the snapshot directory" [ "$(cat "$tmp/pull.out")" = "$snapshot" ]
layout_ok=1
for f in config.json model.safetensors vocab.json merges.txt preprocessor_config.json tokenizer_config.json; do
    target=$(readlink "$snapshot/$f")
    case "$target" in ../../blobs/*) ;; *) layout_ok=0; echo "    $f -> '$target'" ;; esac
    cmp -s "$snapshot/$f" "$fixture/$f" || { layout_ok=0; echo "    $f differs"; }
done
check "snapshot files are ../../blobs symlinks with the fixture's bytes" [ $layout_ok = 1 ]
check "the LFS blob is named by its sha256" [ "$(readlink "$snapshot/model.safetensors")" = "../../blobs/$sha" ]
check "no .incomplete file is left" [ -z "$(ls "$cache/blobs" | grep incomplete)" ]

# 2. Resolution by repo id, through HF_HOME and through HF_HUB_CACHE.
check "model path resolves the repo id" [ "$("$vdx" model path "$repo" 2>&1)" = "$snapshot" ]
check "model path honours HF_HUB_CACHE" \
    [ "$(env -u HF_HOME HF_HUB_CACHE="$HF_HOME/hub" "$vdx" model path "$repo" 2>&1)" = "$snapshot" ]
check "model path with @commit" [ "$("$vdx" model path "$repo@$commit" 2>&1)" = "$snapshot" ]
"$vdx" model path "$repo" > /dev/full 2> "$tmp/full.err"
check "output lost to a full disk is an error, not exit 0" [ $? -eq 1 ]
check "the lost output is reported" \
    grep -qx "vdx: writing to standard output failed: No space left on device" "$tmp/full.err"
"$vdx" model info "$repo" > "$tmp/info.out" 2>&1
check "model info reads the pulled model" grep -q '^parameters 4,070,081 (+ 2 int64 buffers)$' "$tmp/info.out"
"$vdx" model path nobody/nothing > "$tmp/missing.out" 2>&1
check "a repo not in the cache says how to pull it" \
    grep -q "'vdx model pull nobody/nothing' downloads it" "$tmp/missing.out"

# 3. A second pull downloads nothing (HEAD requests only).
: > "$tmp/server.log"
"$vdx" model pull "$repo" > /dev/null 2> "$tmp/pull2.err"
check "second pull succeeds and downloads nothing" grep -q ": 0 files downloaded" "$tmp/pull2.err"
check "second pull sends no GET" sh -c "! grep -q '^GET' '$tmp/server.log'"

# 4. An interrupted download resumes with a Range request.
half=$((size / 2))
rm -f "$cache/blobs/$sha" "$snapshot/model.safetensors"
head -c "$half" "$fixture/model.safetensors" > "$cache/blobs/$sha.incomplete"
: > "$tmp/server.log"
"$vdx" model pull "$repo" > /dev/null 2> "$tmp/pull3.err"
check "partial file resumes from byte $half" grep -q "^GET /__lfs/$sha 206 $((size - half))$" "$tmp/server.log"
check "resumed file equals the original" cmp -s "$snapshot/model.safetensors" "$fixture/model.safetensors"

# 5. A download whose sha256 differs is refused and removed.
rm -f "$cache/blobs/$sha" "$snapshot/model.safetensors"
head -c "$half" /dev/zero > "$cache/blobs/$sha.incomplete"
if "$vdx" model pull "$repo" > /dev/null 2> "$tmp/pull4.err"; then
    not_ok "corrupted download is refused" "pull succeeded"
else
    check "corrupted download is refused" grep -q "refusing the download (removed; run the pull again): model.safetensors: sha256 of the download is [0-9a-f]*, the hub says $sha" "$tmp/pull4.err"
fi
check "refused download leaves no blob behind" sh -c "[ ! -e '$cache/blobs/$sha' ] && [ ! -e '$cache/blobs/$sha.incomplete' ]"
"$vdx" model pull "$repo" > /dev/null 2>&1
check "pulling again repairs the cache" cmp -s "$snapshot/model.safetensors" "$fixture/model.safetensors"

# 6. Transient server errors are retried.
stop_server
rm -rf "$HF_HOME"
start_server --fail-first 1
if "$vdx" model pull "$repo" > /dev/null 2> "$tmp/pull5.err"; then
    check "503 answers are retried" grep -q "HTTP 503; retrying" "$tmp/pull5.err"
else
    not_ok "503 answers are retried" "$(tail -2 "$tmp/pull5.err")"
fi
stop_server
start_server

# 7. A repo without model.safetensors: pytorch_model.bin, and the miss is recorded.
if dir=$("$vdx" model pull other/tiny-bin 2> "$tmp/pull6.err"); then
    check "falls back to pytorch_model.bin" cmp -s "$dir/pytorch_model.bin" "$fixture/pytorch_model.bin"
    bin_commit=$(basename "$dir")
    check "records the missing model.safetensors in .no_exist" \
        [ -f "$HF_HOME/hub/models--other--tiny-bin/.no_exist/$bin_commit/model.safetensors" ]
else
    not_ok "falls back to pytorch_model.bin" "$(tail -2 "$tmp/pull6.err")"
fi

# 8. A repo the hub does not have.
if "$vdx" model pull nobody/nothing > /dev/null 2> "$tmp/pull7.err"; then
    not_ok "unknown repo fails" "pull succeeded"
else
    check "unknown repo fails with the URL" grep -q "nobody/nothing/resolve/main/config.json: not found" "$tmp/pull7.err"
fi

# 9. A gated repo: HF_TOKEN goes to the hub as a Bearer header, never to the LFS host the hub
# redirects to (localhost here, 127.0.0.1 for the hub); without it the message says what to do.
stop_server
rm -rf "$HF_HOME"
: > "$tmp/auth.log"
start_server --token s3cret-token --lfs-host localhost --auth-log "$tmp/auth.log"
"$vdx" model pull "$repo" > "$tmp/gated.out" 2> "$tmp/gated.err"
rc=$?
check "a gated repo without HF_TOKEN fails (exit 1)" [ $rc -eq 1 ]
check "the gated-repo message says to set HF_TOKEN" grep -q "HTTP 401: the repository is private or gated; set HF_TOKEN" "$tmp/gated.err"
: > "$tmp/auth.log"
if HF_TOKEN=s3cret-token "$vdx" model pull "$repo" > "$tmp/token.out" 2> "$tmp/token.err"; then
    check "with HF_TOKEN the gated repo is pulled" cmp -s "$cache/snapshots/$(cat "$cache/refs/main")/model.safetensors" "$fixture/model.safetensors"
else
    not_ok "with HF_TOKEN the gated repo is pulled" "$(tail -2 "$tmp/token.err")"
fi
check "every hub request carries the token" sh -c "grep ' /$repo/resolve/' '$tmp/auth.log' | grep -qv ' auth\$' && exit 1; grep -q ' /$repo/resolve/' '$tmp/auth.log'"
check "the LFS download on the other host gets no token" sh -c "grep -q '^GET /__lfs/$sha localhost:[0-9]* -\$' '$tmp/auth.log' && ! grep '/__lfs/' '$tmp/auth.log' | grep -q ' auth\$'"
check "the token is never printed" sh -c "! grep -q s3cret '$tmp/token.out' '$tmp/token.err' '$tmp/gated.err'"

# 10. A branch or tag revision (--revision REV, ID@REV): refs/REV holds the commit.
stop_server
start_server
: > "$tmp/server.log"
if dir=$("$vdx" model pull "$repo" --revision v1.0 2> "$tmp/rev.err"); then
    rev_commit=$(cat "$cache/refs/v1.0" 2>/dev/null)
    check "@v1.0: refs/v1.0 holds the commit of the snapshot" [ "$dir" = "$cache/snapshots/$rev_commit" ]
    check "@v1.0: the revision is resolved at the hub" grep -q "^[A-Z]* /$repo/resolve/v1.0/config.json 200 " "$tmp/server.log"
    check "@v1.0: model path resolves the revision" [ "$("$vdx" model path "$repo@v1.0" 2>&1)" = "$dir" ]
else
    not_ok "pull --revision v1.0" "$(tail -2 "$tmp/rev.err")"
fi

# 11. The cache default without HF_HOME/HF_HUB_CACHE: $XDG_CACHE_HOME/huggingface/hub, else
# ~/.cache/huggingface/hub (as huggingface_hub).
if dir=$(env -u HF_HOME XDG_CACHE_HOME="$tmp/xdg" "$vdx" model pull "$repo" 2> "$tmp/xdg.err"); then
    check "XDG_CACHE_HOME: the model lands in \$XDG_CACHE_HOME/huggingface/hub" \
        sh -c "[ -f '$tmp/xdg/huggingface/hub/models--openai--clip-vit-base-patch32/refs/main' ] && case '$dir' in '$tmp/xdg/huggingface/hub/'*) true ;; *) false ;; esac"
else
    not_ok "pull with XDG_CACHE_HOME" "$(tail -2 "$tmp/xdg.err")"
fi
mkdir -p "$tmp/home"
if dir=$(env -u HF_HOME -u XDG_CACHE_HOME HOME="$tmp/home" "$vdx" model pull "$repo" 2> "$tmp/home.err"); then
    check "no XDG_CACHE_HOME: the model lands in ~/.cache/huggingface/hub" \
        sh -c "case '$dir' in '$tmp/home/.cache/huggingface/hub/models--openai--clip-vit-base-patch32/snapshots/'*) true ;; *) false ;; esac"
else
    not_ok "pull with the default cache" "$(tail -2 "$tmp/home.err")"
fi

# 12. Usage.
"$vdx" model pull --help > "$tmp/help.out" 2>&1
check "model pull --help prints the usage" grep -q "^usage: vdx model pull \[REPO_ID\] \[--revision REV\]" "$tmp/help.out"
"$vdx" model frobnicate > /dev/null 2> "$tmp/usage.err"
check "an unknown subcommand is a usage error (exit 2)" [ $? -eq 2 ]
check "the usage error names the subcommand" grep -q "unknown subcommand 'frobnicate' (pull, path or info)" "$tmp/usage.err"

exit $failed
