#!/bin/sh
# House rules that a grep can hold (docs/architecture.md, "Errors" and "Toolkit"):
#   - the library is quiet: nothing under src/ but src/cli/ writes to stdout or stderr
#     (progress and notices go through callbacks the CLI draws);
#   - no status is decided by a message's text: the server and the CLI never look into
#     an error message (strstr/strncmp/strcmp on ->message or .message);
#   - one copy of each toolkit piece: the FNV-1a offset basis, curl_global_init, the
#     float16 conversion and the UTC timestamp format each live in src/common only;
#   - the vdx_ prefix means the public API: a function declared in a private header
#     (src/**/*.h) never carries it, so a name tells whether changing it breaks users.
set -u
cd "$(dirname "$0")/../.." || exit 1
failed=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1: $2"; failed=1; }

# (comments are cut off first: they may name stderr)
writes='\b(printf|fprintf|vfprintf|puts|fputs|putchar|fputc|perror)\(|\b(stdout|stderr)\b'
out=$(grep -rnE "$writes" src --include='*.c' --include='*.h' | grep -v '^src/cli/' |
      sed -E 's#/\*.*##; s#^([^:]*:[0-9]+:)[[:space:]]*\*.*#\1#' | grep -E "$writes")
[ -z "$out" ] && ok "no library code writes to stdout or stderr" ||
    not_ok "no library code writes to stdout or stderr" "$(echo "$out" | head -5)"

out=$(grep -rnE '(strstr|strncmp|strcmp|strcasestr|strncasecmp)\([^;]*(\.|->)message' src)
[ -z "$out" ] && ok "no decision is made by matching an error message" ||
    not_ok "no decision is made by matching an error message" "$(echo "$out" | head -5)"

check_one_home() { # what, pattern, the one file allowed
    where=$(grep -rlE "$2" src --include='*.c' | grep -v "^$3\$")
    [ -z "$where" ] && ok "$1 lives only in $3" || not_ok "$1 lives only in $3" "also in: $where"
}
check_one_home "the FNV-1a hash" '1469598103934665603' src/common/hash.c
check_one_home "curl_global_init" 'curl_global_init' src/common/http_client.c
check_one_home "the float16 conversion" '0x477ff000u|_mm256_cvtps_ph' src/common/half.c
check_one_home "the UTC timestamp format" '%Y-%m-%dT%H:%M:%SZ' src/common/clock.c
# (vdx_number/vdx_lower/vdx_upper are SQL function names registered in SQLite, not C)
out=$(grep -rnE '^[a-z_ ]*[ *]vdx_[a-z0-9_]+\(' src --include='*.h')
[ -z "$out" ] && ok "no private header declares a vdx_ function" ||
    not_ok "no private header declares a vdx_ function" "$(echo "$out" | head -5)"
exit $failed
