#!/usr/bin/env bash
# Runs one stage of `make test` and prints a timing line for it, whatever its outcome:
#   [timing] lint: 42.1 s (ok)
# With LLMFLEET_FAILURES set (make test), a failed stage also leaves the lines that say why
# (Ansible's fatal/failed lines, pytest's failures and assertion lines, errors) in that file, so
# the end of the log, which is all CI shows, names the cause. A stage inside a stage (each
# Molecule scenario inside `molecule`) records its own; the outer one adds nothing then.
set -o pipefail
name=$1; shift
start=$(date +%s%N)
if [ -n "${LLMFLEET_FAILURES:-}" ]; then
  log=$(mktemp)
  before=$(wc -c <"$LLMFLEET_FAILURES")
  "$@" 2>&1 | tee "$log"; rc=$?
else
  "$@"; rc=$?
fi
tenths=$(( ($(date +%s%N) - start) / 100000000 ))
line=$(printf '[timing] %s: %d.%d s (%s)' "$name" $((tenths / 10)) $((tenths % 10)) \
  "$([ $rc -eq 0 ] && echo ok || echo "FAILED rc=$rc")")
echo "$line"
[ -n "${LLMFLEET_TIMINGS:-}" ] && echo "$line" >>"$LLMFLEET_TIMINGS"
if [ -n "${LLMFLEET_FAILURES:-}" ]; then
  if [ $rc -ne 0 ] && [ "$(wc -c <"$LLMFLEET_FAILURES")" -eq "$before" ]; then
    {
      echo "== why $name failed (the last 60 matching lines of its output)"
      grep -aE 'fatal:|FAILED!|failed=[1-9]|unreachable=[1-9]|^E  |^FAILED |^ERROR|Error:|error:|AssertionError|Traceback|CRITICAL|^[a-z/_.]+:[0-9]+:[0-9]*:? ' "$log" \
        | grep -avE 'FAILED - RETRYING' | cut -c1-400 | tail -60
    } >>"$LLMFLEET_FAILURES"
  fi
  rm -f "$log"
fi
exit $rc
