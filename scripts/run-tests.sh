#!/bin/sh
# Runs every vdx test suite and prints one closing line "N passed, N failed".
#   unit        tests/test_* in the release build (unit + golden)
#   asan        the same programs built with -fsanitize=address,undefined
#   valgrind    tests/test_golden_* under valgrind (memcheck, errors are failures)
#   integration tests/integration/*.sh (CLI end to end, ClickHouse, make demo flow)
#   browser     tests/browser/run.sh (Playwright + Debian's chromium)
# Usage: scripts/run-tests.sh [suite...]   (default: all, in that order)
set -u
cd "$(dirname "$0")/.."
suites=${*:-unit asan valgrind integration browser}
jobs=$(nproc 2>/dev/null || echo 2)
log_dir=build/test-logs
mkdir -p "$log_dir"
passed=0 failed=0 skipped=0
failures=""

count() { # count LOGFILE LABEL EXIT
    p=$(grep -c '^ok - ' "$1"); f=$(grep -c '^not ok - ' "$1"); s=$(grep -c '^skip - ' "$1")
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1; echo "not ok - $2 exited with status $3" >> "$1"
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    [ "$f" -eq 0 ] || failures="$failures $2"
    printf '%-44s %4d passed %3d failed %3d skipped\n' "$2" "$p" "$f" "$s"
    [ "$f" -eq 0 ] || { grep -B3 -A30 '^not ok - \|CHECK\|ERROR\|==[0-9]*==' "$1" | head -80; }
}

run_programs() { # run_programs BUILD_DIR LABEL [WRAPPER...]
    dir=$1; label=$2; shift 2
    for t in "$dir"/tests/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        case "$label" in valgrind) case "$name" in test_golden_*) ;; *) continue ;; esac ;; esac
        log="$log_dir/$label-$name.log"
        "$@" "$t" > "$log" 2>&1
        count "$log" "$label/$name" $?
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
        for t in tests/integration/*.sh; do
            [ -f "$t" ] || continue
            name=$(basename "$t" .sh)
            log="$log_dir/integration-$name.log"
            VDX_BUILD=build/release sh "$t" > "$log" 2>&1
            count "$log" "integration/$name" $?
        done ;;
    browser)
        if [ -f tests/browser/run.sh ]; then
            log="$log_dir/browser.log"
            VDX_BUILD=build/release sh tests/browser/run.sh > "$log" 2>&1
            count "$log" "browser" $?
        fi ;;
    *) echo "unknown suite '$suite'"; exit 2 ;;
    esac
done
echo "logs: $log_dir/"
[ -z "$failures" ] || echo "failing:$failures"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
