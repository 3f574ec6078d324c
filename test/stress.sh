#!/usr/bin/env bash
# The suite's own robustness, as `make test-stress` runs it: tests that fail only on a busy machine,
# or only after another file, are bugs to find. Three rounds, each printing PASS/FAIL per run:
#   busy   the unit project 5 times while an e2e file runs beside it (e2e: quorum, a busy lab);
#   thrice every e2e file 3 times in a row, in two lanes side by side (state a file leaves for its next run);
#   orders the whole e2e project in two different seeded file orders (state one file leaves for another).
# usage: test/stress.sh [busy|thrice|orders]...   (default: all three)
# Logs: test-artifacts/stress/. Exits non-zero if any run failed. Takes hours: it is not part of CI.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=test-artifacts/stress
mkdir -p "$logs"
failures=0
results=()

record() { # record NAME RC LOG
  local verdict=PASS
  if [ "$2" != 0 ]; then verdict=FAIL; failures=$((failures + 1)); fi
  results+=("$verdict  $1  ($3)")
  printf '[%s] stress: %s %s\n' "$(date +%H:%M:%S)" "$verdict" "$1"
}

vitest() { npx vitest run "$@"; }

busy() {
  local e2e=test/e2e/quorum.test.ts
  vitest --project e2e "$e2e" >"$logs/busy-e2e.log" 2>&1 &
  local e2e_pid=$!
  # Let the e2e file get its labs going before the unit runs begin.
  sleep 20
  for i in 1 2 3 4 5; do
    vitest --project unit >"$logs/busy-unit-$i.log" 2>&1
    record "unit project, run $i of 5, beside $e2e" $? "$logs/busy-unit-$i.log"
  done
  wait "$e2e_pid"
  record "$e2e (with the unit project beside it)" $? "$logs/busy-e2e.log"
}

thrice() {
  # Two lanes side by side (each its own vitest process and subnet ranges), as CI runs two files at
  # once; within a lane each file runs three times in a row.
  local files=(test/e2e/*.test.ts) lane
  rm -f "$logs"/thrice-lane-*.results
  for lane in 0 1; do
    (
      local i file name run rc
      for i in "${!files[@]}"; do
        [ $((i % 2)) = "$lane" ] || continue
        file=${files[$i]}
        name=$(basename "$file" .test.ts)
        for run in 1 2 3; do
          ETCD_LAB_TEST_WORKER_BASE=$((lane * 2)) vitest --project e2e "$file" >"$logs/thrice-$name-$run.log" 2>&1
          rc=$?
          echo "$rc $file, run $run of 3" >>"$logs/thrice-lane-$lane.results"
          printf '[%s] stress: %s %s, run %s of 3\n' "$(date +%H:%M:%S)" "$([ $rc = 0 ] && echo PASS || echo FAIL)" "$file" "$run"
        done
      done
    ) &
  done
  wait
  local rc rest
  while read -r rc rest; do
    record "$rest" "$rc" "$logs/thrice-$(basename "${rest%%,*}" .test.ts)-${rest: -6:1}.log"
  done < <(cat "$logs"/thrice-lane-*.results)
}

orders() {
  local seed
  for seed in 1 2; do
    vitest --project e2e --sequence.shuffle.files --sequence.seed "$seed" >"$logs/order-$seed.log" 2>&1
    record "the e2e project in shuffled file order, seed $seed (the log lists the files in the order they ran)" $? "$logs/order-$seed.log"
  done
}

rounds=("$@")
[ "${#rounds[@]}" -gt 0 ] || rounds=(busy thrice orders)
for round in "${rounds[@]}"; do
  case "$round" in
    busy | thrice | orders) "$round" ;;
    *) echo "stress: unknown round $round (busy, thrice, orders)" >&2; exit 2 ;;
  esac
done
echo
printf '%s\n' "${results[@]}"
echo "stress: $failures failed of ${#results[@]}"
[ "$failures" = 0 ]
