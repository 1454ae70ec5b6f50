#!/usr/bin/env bash
# Runs one stage of `make test` and prints a timing line for it, whatever its outcome:
#   [timing] lint: 42.1 s (ok)
name=$1; shift
start=$(date +%s%N)
"$@"; rc=$?
tenths=$(( ($(date +%s%N) - start) / 100000000 ))
line=$(printf '[timing] %s: %d.%d s (%s)' "$name" $((tenths / 10)) $((tenths % 10)) \
  "$([ $rc -eq 0 ] && echo ok || echo "FAILED rc=$rc")")
echo "$line"
[ -n "${LLMFLEET_TIMINGS:-}" ] && echo "$line" >>"$LLMFLEET_TIMINGS"
exit $rc
