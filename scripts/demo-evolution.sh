#!/usr/bin/env bash
# Governed evolution: two candidate policy sets roll out on a live
# 3-node kernel while 40 agents work. The first (a regression: it forbids
# the agents' own writes) passes shadow, decides for a 25 % canary cohort,
# and is rolled back automatically when the cohort's deny rate breaches
# its threshold (one-sided Fisher exact test). The second passes every
# step, waits for a human, and is promoted by the operator; policy history
# lists both versions of the set, and a rollback reinstalls the first.
set -euo pipefail
cd "$(dirname "$0")/.."
D=bin/dominus
WORK=$(mktemp -d /tmp/dominus-evolution.XXXXXX)
DEV_PID=""
TRAFFIC_PID=""
cleanup() {
  if [[ -n "$TRAFFIC_PID" ]] && kill -0 "$TRAFFIC_PID" 2>/dev/null; then
    kill -- -"$TRAFFIC_PID" 2>/dev/null || true
    wait "$TRAFFIC_PID" 2>/dev/null || true
  fi
  if [[ -n "$DEV_PID" ]] && kill -0 "$DEV_PID" 2>/dev/null; then
    kill -INT "$DEV_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.1; done
  fi
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

say "Starting a 3-node kernel on 127.0.170.11-13 (dominus dev) in $WORK/dev"
$D dev --dir "$WORK/dev" --base-ip 127.0.170.11 --json >"$WORK/dev.json" 2>"$WORK/dev.err" &
DEV_PID=$!
for _ in $(seq 1 300); do [[ -s "$WORK/dev.json" ]] && break; sleep 0.1; done
[[ -s "$WORK/dev.json" ]] || { echo "dev did not come up:"; cat "$WORK/dev.err"; exit 1; }
# shellcheck disable=SC1091
source "$WORK/dev/env.sh"

say "40 agents, each allowed kv.* on orders/*; the ACTIVE policy set 'base'"
AGENTS=()
for i in $(seq -w 1 40); do
  AGENTS+=("$($D cap grant --entity "agent-$i" --ops 'kv.*' --resources 'orders/*' --ttl 1h 2>/dev/null | tail -1)")
done
cat >"$WORK/base.cedar" <<'CEDAR'
// Nothing under orders/locked/ may be written.
forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.path like "orders/locked/*" };
CEDAR
$D policy set --name base --file "$WORK/base.cedar"

# Every agent writes its own order, over and over, in the background.
# Four writers, ten agents each.
traffic() {
  local part
  for part in 0 1 2 3; do
    (while true; do
      for i in $(seq "$part" 4 39); do
        DOMINUS_TOKEN=${AGENTS[$i]} $D kv put "orders/$i" "v" >/dev/null 2>&1 || true
      done
    done) &
  done
  wait
}
set -m
traffic &
TRAFFIC_PID=$!
set +m

# wait_phase ID PHASE...: poll until the evolution reaches one of PHASEs.
wait_phase() {
  local id=$1; shift
  for _ in $(seq 1 600); do
    local p
    p=$($D evolve status "$id" --json | field phase)
    for want in "$@"; do [[ $p == "$want" ]] && { echo "  $id is $p"; return 0; }; done
    sleep 0.2
  done
  echo "$id never reached $*"; $D evolve status "$id"; exit 1
}

say "Candidate 1 (a regression: it also forbids every write under orders/) starts in shadow"
cat >"$WORK/candidate1.cedar" <<'CEDAR'
forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.path like "orders/locked/*" };
forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.path like "orders/*" };
CEDAR
EV1=$($D evolve start --name base --file "$WORK/candidate1.cedar" --steps 25,100 --window 4s --min-shadow 20 --json | field id)
echo "  evolution $EV1"
wait_phase "$EV1" canary
$D evolve status "$EV1"
say "Canary at 25 %: the cohort is judged by candidate 1, the rest by base; the ledger closes the window"
wait_phase "$EV1" rolled_back paused awaiting_promotion
$D evolve status "$EV1"
[[ $($D evolve status "$EV1" --json | field phase) == rolled_back ]] || { echo "candidate 1 was not rolled back"; exit 1; }
echo "  automatic rollback: the cohort's deny rate breached its threshold; base decides for everyone again"

say "Candidate 2 (harmless: it also locks orders/archive/, which nobody writes) rolls out"
cat >"$WORK/candidate2.cedar" <<'CEDAR'
forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.path like "orders/locked/*" };
forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.path like "orders/archive/*" };
CEDAR
EV2=$($D evolve start --name base --file "$WORK/candidate2.cedar" --steps 25,100 --window 4s --min-shadow 20 --json | field id)
echo "  evolution $EV2"
wait_phase "$EV2" awaiting_promotion rolled_back paused
for _ in 1 2 3; do
  [[ $($D evolve status "$EV2" --json | field phase) == paused ]] || break
  # A window with too few canary decisions (a slow machine) is
  # inconclusive: the evolution pauses, and only a human moves it on.
  $D evolve status "$EV2"
  say "An inconclusive step paused $EV2; the operator resumes it (the step runs again)"
  $D evolve resume "$EV2"
  wait_phase "$EV2" awaiting_promotion rolled_back paused
done
$D evolve status "$EV2"
[[ $($D evolve status "$EV2" --json | field phase) == awaiting_promotion ]] || { echo "candidate 2 did not pass"; exit 1; }

say "Every step passed; promotion waits for a human. The operator promotes it"
$D evolve promote "$EV2"
kill -- -"$TRAFFIC_PID" 2>/dev/null || true; wait "$TRAFFIC_PID" 2>/dev/null || true; TRAFFIC_PID=""

say "policy history lists both versions of base: the first, and candidate 2 via $EV2"
$D policy history base
$D policy history base --json | python3 -c 'import json,sys; [print("  ", {k: v[k] for k in ("version","seq","by","via")}) for v in json.load(sys.stdin)]'

say "A rollback to version 1 is itself a governed, versioned change"
$D policy rollback base --to 1
$D policy history base

say "The chain verifies; stopped, node 1's archive replays record by record, evolutions and all"
$D ledger verify
cleanup
DEV_PID=""
$D audit replay --data-dir "$DOMINUS_NODE1_DATA"
echo
echo "Demo complete. Work dir: $WORK"
