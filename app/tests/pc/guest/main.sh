#!/bin/bash
# Runs each scenario (/pc/NAME.sh) in its own bash with a time limit, cleans up between them,
# and prints a summary line. Exit status 0 only if every scenario passed.
# Usage: main.sh SCENARIO...
source /pc/lib.sh
set -a
source /pc/env
set +a

limit=${PC_SCENARIO_LIMIT:-300}
passed=0
failed=0
failures=()
for name in "$@"; do
    echo
    echo "=== scenario $name"
    t0=$(now)
    rc=0
    this_limit=$limit
    [ "$name" = bench ] && this_limit=$((limit * 3))
    [ "$name" = profile ] && this_limit=$((limit * 2))
    timeout -k 10 "$this_limit" bash /pc/"$name".sh || rc=$?
    t1=$(now)
    if [ $rc -eq 0 ]; then
        echo "=== scenario $name: PASSED ($(elapsed "$t0" "$t1") s)"
        passed=$((passed + 1))
    else
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            echo "FAIL: scenario $name took more than $this_limit s (killed)"
            diagnostics
        fi
        echo "=== scenario $name: FAILED (status $rc, $(elapsed "$t0" "$t1") s)"
        failed=$((failed + 1))
        failures+=("$name")
    fi
    cleanup_all
done
echo
[ $failed -gt 0 ] && echo "failed scenarios: ${failures[*]}"
echo "pc: $passed passed, $failed failed"
[ $failed -eq 0 ]
