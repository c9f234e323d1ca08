#!/bin/sh
# Runs every vdx test suite and prints one closing line "N passed, N failed, N skipped".
#   unit             tests/test_* in the release build (unit + golden)
#   asan             the same programs built with -fsanitize=address,undefined
#   valgrind         tests/test_golden_* under valgrind (memcheck, errors are failures)
#   integration      tests/integration/*.sh (CLI end to end, ClickHouse, make demo flow)
#   asan-integration a subset of tests/integration/*.sh with the ASan+UBSan vdx (any
#                    sanitizer report fails the script)
#   browser          tests/browser/run.sh (Playwright + Debian's chromium)
# Usage: scripts/run-tests.sh [suite...]   (default: all, in that order)
#
# A run cannot go green by accident (docs/testing.md, "What the runner enforces"):
# - every program/script must have an entry in tests/plan.txt and report at least the
#   number of cases it declares there (ok + not ok + skip lines); a C test program must
#   also print its closing "NAME: N passed, N failed, N skipped" line; a planned program
#   that is not built, or an empty build directory, is a failure;
# - each program runs under timeout(1): the suite's default (below) or the plan's third
#   column, times $VDX_TEST_TIMEOUT_SCALE (default 1); a hang fails with the program's name;
# - under CI=true a skip fails unless tests/skip-allow.txt allows it (with a reason); the
#   skips are listed at the end either way.
set -u
cd "$(dirname "$0")/.."
suites=${*:-unit asan valgrind integration asan-integration browser}
jobs=$(nproc 2>/dev/null || echo 2)
log_dir=build/test-logs
plan=tests/plan.txt
allow=tests/skip-allow.txt
mkdir -p "$log_dir"
passed=0 failed=0 skipped=0
failures=""
skip_list="$log_dir/skips.txt"
: > "$skip_list"
ci=false
[ "${CI:-}" = true ] && ci=true
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | sed 's/^[^:]*://')

# the suite's default timeout in seconds (generous: 5-20x the time on the 2-core machine)
suite_timeout() {
    case "$1" in
    unit | asan | valgrind) echo 300 ;; # x3 under asan, x10 under valgrind (run_one)
    integration | asan-integration | browser) echo 1200 ;;
    esac
}

# plan_field NAME COLUMN: the plan's value for NAME (test_store, integration/api, browser)
plan_field() {
    awk -v n="$1" -v c="$2" '!/^[ \t]*#/ && $1 == n { print $c; exit }' "$plan"
}

# skip_allowed LABEL TEXT: prints the allow-list reason and succeeds when the skip is allowed
skip_allowed() {
    reason_text=$(printf '%s' "$2" | tr 'A-Z' 'a-z')
    while IFS= read -r line; do
        case "$line" in '#'* | '') continue ;; esac
        case "$line" in
        'cpu '*)
            feature=$(printf '%s' "$line" | awk '{ print tolower($2) }')
            case "$reason_text" in *"cpu lacks $feature"*) ;; *) continue ;; esac
            # the machine must really lack it: a CPU with the feature runs the test
            case " $cpu_flags " in *" $feature "*) continue ;; esac
            printf '%s' "$line" | cut -d' ' -f3- ; return 0 ;;
        *)
            lglob=$(printf '%s' "$line" | awk -F' [|] ' '{ print $1 }')
            tglob=$(printf '%s' "$line" | awk -F' [|] ' '{ print $2 }')
            why=$(printf '%s' "$line" | awk -F' [|] ' '{ print $3 }')
            [ -n "$why" ] || continue # an entry without a reason allows nothing
            # shellcheck disable=SC2254
            case "$1" in $lglob) ;; *) continue ;; esac
            # shellcheck disable=SC2254
            case "$2" in $tglob) printf '%s' "$why"; return 0 ;; esac ;;
        esac
    done < "$allow"
    return 1
}

fail_line() { # fail_line LOG TEXT: a failure the runner adds to a program's log
    echo "not ok - $2" >> "$1"
}

# check LOGFILE LABEL PLAN-NAME EXIT TIMEOUT SECONDS KIND: counts one program's cases
check() {
    log=$1 label=$2 pname=$3 status=$4 limit=$5 secs=$6 kind=$7
    cases=$(grep -c '^\(ok\|not ok\|skip\) - ' "$log") # what the program reported itself
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        fail_line "$log" "$label timed out after ${limit} s (a hang? scale with VDX_TEST_TIMEOUT_SCALE)"
    elif [ "$status" -ne 0 ] && ! grep -q '^not ok - ' "$log"; then
        fail_line "$log" "$label exited with status $status"
    fi
    min=$(plan_field "$pname" 2)
    if [ -z "$min" ]; then
        fail_line "$log" "$label has no entry in $plan (add '$pname MIN-CASES')"
    elif [ "$cases" -lt "$min" ]; then
        fail_line "$log" "$label reported $cases cases, $plan declares at least $min"
    fi
    if [ "$kind" = program ] && [ "$status" -ne 124 ] && [ "$status" -ne 137 ] &&
        ! grep -q '^[A-Za-z0-9_]*: [0-9]* passed, [0-9]* failed, [0-9]* skipped$' "$log"; then
        fail_line "$log" "$label ended without its closing 'N passed, N failed, N skipped' line"
    fi
    grep '^skip - ' "$log" | sed 's/^skip - //' | while IFS= read -r text; do
        if why=$(skip_allowed "$label" "$text"); then
            echo "  $label: $text  [allowed: $why]" >> "$skip_list"
        else
            echo "  $label: $text  [not on $allow]" >> "$skip_list"
            $ci && fail_line "$log" "$label: skipped under CI=true and not on $allow: $text"
        fi
    done
    p=$(grep -c '^ok - ' "$log"); f=$(grep -c '^not ok - ' "$log"); s=$(grep -c '^skip - ' "$log")
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    [ "$f" -eq 0 ] || failures="$failures $label"
    printf '%-44s %4d passed %3d failed %3d skipped %5ds\n' "$label" "$p" "$f" "$s" "$secs"
    [ "$f" -eq 0 ] || { grep -B3 -A30 '^not ok - \|CHECK\|ERROR\|==[0-9]*==\|runtime error' "$log" | head -80; }
}

# run_one LABEL PLAN-NAME SUITE KIND LOG COMMAND...: runs one program under its timeout
run_one() {
    label=$1 pname=$2 suite=$3 kind=$4 log=$5; shift 5
    limit=$(plan_field "$pname" 3)
    [ -n "$limit" ] || limit=$(suite_timeout "$suite")
    case "$suite" in asan) limit=$((limit * 3)) ;; valgrind) limit=$((limit * 10)) ;; esac
    limit=$(awk -v t="$limit" -v s="${VDX_TEST_TIMEOUT_SCALE:-1}" 'BEGIN { printf "%d", t * s + 0.5 }')
    start=$(date +%s)
    timeout -k 20 "$limit" "$@" > "$log" 2>&1
    status=$?
    check "$log" "$label" "$pname" "$status" "$limit" $(($(date +%s) - start)) "$kind"
}

run_programs() { # run_programs BUILD_DIR SUITE [WRAPPER...]
    dir=$1; suite=$2; shift 2
    ran=""
    for t in "$dir"/tests/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        case "$suite" in valgrind) case "$name" in test_golden_*) ;; *) continue ;; esac ;; esac
        ran="$ran $name "
        run_one "$suite/$name" "$name" "$suite" program "$log_dir/$suite-$name.log" "$@" "$t"
    done
    if [ -z "$ran" ]; then
        echo "not ok - $suite: no test program in $dir/tests (an empty build is a failure)"
        failed=$((failed + 1)); failures="$failures $suite"
    fi
    # every planned program must have run
    for name in $(awk '!/^[ \t]*#/ && $1 ~ /^test_/ { print $1 }' "$plan"); do
        case "$suite" in valgrind) case "$name" in test_golden_*) ;; *) continue ;; esac ;; esac
        case "$ran" in *" $name "*) continue ;; esac
        echo "not ok - $suite/$name: in $plan but $dir/tests/$name is not built"
        failed=$((failed + 1)); failures="$failures $suite/$name"
    done
}

run_scripts() { # run_scripts SUITE BUILD_DIR SCRIPT...: integration scripts
    suite=$1 build=$2; shift 2
    for t in "$@"; do
        name=$(basename "$t" .sh)
        log="$log_dir/$suite-$name.log"
        if [ ! -f "$t" ]; then
            echo "not ok - $suite/$name: $t is missing"
            failed=$((failed + 1)); failures="$failures $suite/$name"; continue
        fi
        if [ "$suite" = asan-integration ]; then
            san="$log_dir/$suite-$name.san"
            rm -rf "$san"; mkdir -p "$san"
            ASAN_OPTIONS="detect_leaks=1:log_path=$PWD/$san/asan" \
            UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$PWD/$san/ubsan" \
                run_one "$suite/$name" "integration/$name" "$suite" script "$log" \
                env VDX_BUILD="$build" sh "$t"
            for r in "$san"/*; do
                [ -f "$r" ] || continue
                echo "not ok - $suite/$name: sanitizer report $r" >> "$log"
                head -30 "$r"; failed=$((failed + 1))
                case "$failures" in *" $suite/$name") ;; *) failures="$failures $suite/$name" ;; esac
            done
        else
            run_one "$suite/$name" "integration/$name" "$suite" script "$log" \
                env VDX_BUILD="$build" sh "$t"
        fi
    done
}

for suite in $suites; do
    echo "== $suite"
    case "$suite" in
    unit)
        echo "+ make -j$jobs BUILD=build/release"
        make -s -j"$jobs" BUILD=build/release all || { echo "not ok - build (release)"; failed=$((failed+1)); failures="$failures build"; continue; }
        run_programs build/release unit ;;
    asan)
        echo "+ make -j$jobs BUILD=build/asan SAN=1 OPT=-O1"
        make -s -j"$jobs" BUILD=build/asan SAN=1 OPT=-O1 all || { echo "not ok - build (asan)"; failed=$((failed+1)); failures="$failures build-asan"; continue; }
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            run_programs build/asan asan ;;
    valgrind)
        OPENBLAS_NUM_THREADS=1 run_programs build/release valgrind \
            valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --suppressions=tests/valgrind.supp ;;
    integration)
        # every script, and every script the plan names (a deleted one is a failure)
        scripts=$( (ls tests/integration/*.sh 2>/dev/null
            awk '!/^[ \t]*#/ && $1 ~ /^integration\// { sub(/^integration\//, "", $1); print "tests/integration/" $1 ".sh" }' "$plan") | sort -u)
        # shellcheck disable=SC2086
        run_scripts integration build/release $scripts ;;
    asan-integration)
        [ -x build/asan/vdx ] || { echo "+ make -j$jobs BUILD=build/asan SAN=1 OPT=-O1"
            make -s -j"$jobs" BUILD=build/asan SAN=1 OPT=-O1 all || { echo "not ok - build (asan)"; failed=$((failed+1)); failures="$failures build-asan"; continue; }; }
        # the scripts that drive the CLI's commands, parsers and server (see docs/testing.md)
        run_scripts asan-integration build/asan \
            tests/integration/embed.sh tests/integration/api.sh tests/integration/concept.sh \
            tests/integration/model_pull.sh tests/integration/ingest.sh tests/integration/map.sh ;;
    browser)
        run_one browser browser browser script "$log_dir/browser.log" \
            env VDX_BUILD=build/release sh tests/browser/run.sh ;;
    *) echo "unknown suite '$suite'"; exit 2 ;;
    esac
done
echo "logs: $log_dir/"
if [ -s "$skip_list" ]; then
    if $ci; then echo "skips (CI=true: only those allowed by $allow pass):"; else echo "skips:"; fi
    cat "$skip_list"
fi
[ -z "$failures" ] || echo "failing:$failures"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
