#!/usr/bin/env bash
# The Dominus demo: a local 3-node kernel of real agent processes, a
# scripted workload, a kill -9 of the leader, recovery, and audit replays.
set -euo pipefail
cd "$(dirname "$0")/.."
D=bin/dominus
WORK=$(mktemp -d /tmp/dominus-demo.XXXXXX)
DEV_PID=""
cleanup() {
  if [[ -n "$DEV_PID" ]] && kill -0 "$DEV_PID" 2>/dev/null; then
    kill -INT "$DEV_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.1; done
  fi
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json_field() { sed -n "s/.*\"$1\": *\"\\{0,1\\}\\([^\",]*\\)\"\\{0,1\\},\\{0,1\\}\$/\\1/p" | head -n1; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

say "Starting a 3-node kernel (dominus dev) in $WORK/dev"
$D dev --dir "$WORK/dev" --json >"$WORK/dev.json" 2>"$WORK/dev.err" &
DEV_PID=$!
for _ in $(seq 1 300); do [[ -s "$WORK/dev.json" ]] && break; sleep 0.1; done
[[ -s "$WORK/dev.json" ]] || { echo "dev did not come up:"; cat "$WORK/dev.err"; exit 1; }
# shellcheck disable=SC1091
source "$WORK/dev/env.sh"
ADDRS=("$DOMINUS_NODE1_ADDR" "$DOMINUS_NODE2_ADDR" "$DOMINUS_NODE3_ADDR")
$D status

say "Writing 300 keys through all three nodes (followers forward to the leader)"
for i in $(seq 1 300); do
  $D kv put "orders/$((i % 50))" "order-$i" --addr "${ADDRS[$((i % 3))]}" >/dev/null
done
echo "  kv get orders/7: $($D kv get orders/7)"
echo "  the last 5 ledger events:"
$D ledger tail -n 5

heads() {
  for a in "${ADDRS[@]}"; do
    printf '  %-26s ' "$a"
    $D status --addr "$a" --json 2>/dev/null | tr -d '\n ' | sed -n 's/.*"head":{"seq":\([0-9]*\),"hash":"\([0-9a-f]\{16\}\).*/seq \1 hash \2…/p' || true
    echo
  done
}
say "Every node holds the same chain head"
heads

LEADER=$($D status --json | json_field leader)
LEADER_PID=""
for k in 1 2 3; do
  name_var="DOMINUS_NODE${k}_NAME"; pid_var="DOMINUS_NODE${k}_PID"
  if [[ "${!name_var}" == "$LEADER" ]]; then LEADER_PID=${!pid_var}; LEADER_IDX=$k; fi
done
say "kill -9 of the leader $LEADER (pid $LEADER_PID)"
kill -9 "$LEADER_PID"
T0=$(date +%s%N)
OTHER="${ADDRS[$(( LEADER_IDX % 3 ))]}"
until $D kv put failover/probe "after-kill" --addr "$OTHER" --timeout 1s >/dev/null 2>&1; do
  if (( $(ms_since "$T0") > 20000 )); then echo "no new leader within 20s"; exit 1; fi
  sleep 0.05
done
echo "  a new leader ($($D status --addr "$OTHER" --json | json_field leader)) committed a write $(ms_since "$T0") ms after the kill"

say "More writes while $LEADER is down; dev restarts it and it catches up"
for i in $(seq 1 50); do $D kv put "after/$i" "v$i" --addr "$OTHER" >/dev/null; done
for _ in $(seq 1 100); do
  n=$(heads | sed -n 's/.*seq \([0-9]*\) hash \([0-9a-f]*\).*/\1 \2/p' | sort -u | wc -l)
  [[ "$n" == 1 ]] && [[ $(heads | grep -c seq) == 3 ]] && break
  sleep 0.2
done
heads

say "Snapshot + ledger export + offline audit replay reproduce the live head"
$D snapshot save "$WORK/snap.bin" --addr "$OTHER"
SNAP_SEQ=$($D snapshot inspect "$WORK/snap.bin" --json | tr -d '\n ' | sed -n 's/.*"head":{"seq":\([0-9]*\).*/\1/p')
for i in $(seq 1 20); do $D kv put "post-snapshot/$i" "v$i" --addr "$OTHER" >/dev/null; done
$D ledger export --from "$SNAP_SEQ" "$WORK/ledger.export" --addr "$OTHER"
LIVE=$($D status --addr "$OTHER" --json | tr -d '\n ' | sed -n 's/.*"head":{"seq":\([0-9]*\),"hash":"\([0-9a-f]*\)".*/\1 \2/p')
echo "  live head:   $LIVE"
$D audit replay --snapshot "$WORK/snap.bin" --ledger "$WORK/ledger.export"

say "A flipped byte in the export is caught (exit 4, naming the first bad seq)"
cp "$WORK/ledger.export" "$WORK/tampered.export"
SIZE=$(stat -c %s "$WORK/tampered.export")
OFF=$(( SIZE / 2 ))
printf "$(printf '\\x%02x' $(( ( $(od -An -tu1 -j "$OFF" -N1 "$WORK/tampered.export") ^ 1 ) )))" |
  dd of="$WORK/tampered.export" bs=1 seek="$OFF" count=1 conv=notrunc status=none
set +e
$D audit replay --snapshot "$WORK/snap.bin" --ledger "$WORK/tampered.export"
RC=$?
set -e
echo "  exit status $RC"
[[ $RC == 4 ]] || { echo "expected exit 4"; exit 1; }

say "The syscall gate: a named operator, a 3-use capability, policy, escalation, halt"
# issue runs a grant and prints its token only (the CLI's reminder that a
# token is shown once goes to stderr; the demo keeps the tokens in shell
# variables and says what it issued instead).
issue() { "$@" 2>/dev/null | tail -1; }
ALICE=$(issue $D operator add alice --scopes cap.grant,cap.revoke,cap.read,policy.set,approval.decide,halt,audit.read,kv.*,payments.*,exec.*)
AGENT=$(DOMINUS_TOKEN=$ALICE issue $D cap grant --entity agent-a --ops kv.put --resources 'orders/*' --uses 3 --ttl 1h)
PAYER=$(DOMINUS_TOKEN=$ALICE issue $D cap grant --entity agent-pay --ops payments.send,kv.put --resources 'acct/*,orders/*' --ttl 1h)
echo "  issued: alice's operator token; agent-a (kv.put on orders/*, 3 uses); agent-pay (payments.send, kv.put)"
agent() { DOMINUS_TOKEN=$AGENT $D syscall "$@"; }
payer() { DOMINUS_TOKEN=$PAYER $D syscall "$@"; }
expect_exit() { local want=$1; shift; set +e; "$@"; local rc=$?; set -e; echo "  (exit $rc)"; [[ $rc == "$want" ]] || { echo "expected exit $want"; exit 1; }; }
expect_exit 0 agent kv.put orders/1 --args first
expect_exit 0 agent kv.put orders/2 --args second
expect_exit 0 agent kv.put orders/3 --args third
expect_exit 2 agent kv.put orders/4 --args "a fourth use"
cat >"$WORK/vip.cedar" <<'CEDAR'
forbid(principal, action, resource) when { resource.path like "orders/vip/*" };
CEDAR
DOMINUS_TOKEN=$ALICE $D policy set --name vip --file "$WORK/vip.cedar"
expect_exit 2 payer kv.put orders/vip/7 --args nope
cat >"$WORK/money.cedar" <<'CEDAR'
@escalate("payments need a human")
forbid(principal, action == Dominus::Action::"payments.send", resource);
CEDAR
DOMINUS_TOKEN=$ALICE $D policy set --name money --file "$WORK/money.cedar"
OUT=$(payer payments.send acct/1 --args '{"amount":900}' --json || true)
APR=$(echo "$OUT" | json_field approval_id)
echo "  escalated: approval $APR"
DOMINUS_TOKEN=$ALICE $D approvals approve "$APR"
expect_exit 2 payer payments.send acct/1 --args '{"amount":901}' --approval "$APR"
expect_exit 0 payer payments.send acct/1 --args '{"amount":900}' --approval "$APR"
expect_exit 2 payer payments.send acct/1 --args '{"amount":900}' --approval "$APR"
DOMINUS_TOKEN=$ALICE $D halt --reason "demo incident"
AGENT2=$(DOMINUS_TOKEN=$ALICE issue $D cap grant --entity agent-b --ops exec.run --resources /bin/echo)
echo "  issued: agent-b (exec.run on /bin/echo)"
expect_exit 2 env DOMINUS_TOKEN="$AGENT2" $D syscall exec.run /bin/echo --args '["hello"]'
DOMINUS_TOKEN=$ALICE $D resume
OUT=$(DOMINUS_TOKEN=$AGENT2 $D syscall exec.run /bin/echo --args '["hello from a driver"]' --json)
SEQ=$(echo "$OUT" | tr -d '\n ' | sed -n 's/.*"seq":\([0-9]*\).*/\1/p')
sleep 1
DOMINUS_TOKEN=$AGENT2 $D effects "$SEQ"
cat >"$WORK/strict.cedar" <<'CEDAR'
forbid(principal, action == Dominus::Action::"kv.put", resource) when { resource.path like "orders/*" };
CEDAR
say "Backtest: which earlier permits would a stricter policy have denied?"
DOMINUS_TOKEN=$ALICE $D policy backtest --file "$WORK/strict.cedar" --from 1
say "The ledger records every decision with its reason and its human"
DOMINUS_TOKEN=$ALICE $D ledger tail -n 16

say "History: yesterday's value, an agent's record, and a policy that remembers"
S1=$($D kv put config/limit 100 --json | json_field seq)
$D kv put config/limit 250 >/dev/null
echo "  config/limit now:               $($D kv get config/limit)"
echo "  config/limit as of seq $S1:    $($D kv get config/limit --as-of "$S1" 2>/dev/null)"
$D kv get config/limit --as-of "$S1" --json
PROBE=$(DOMINUS_TOKEN=$ALICE issue $D cap grant --entity agent-probe --ops kv.get --resources 'public/*' --ttl 1h)
echo "  issued: agent-probe (kv.get on public/*)"
cat >"$WORK/probing.cedar" <<'CEDAR'
// An agent denied more than 5 times in the last hour is probing: deny it.
forbid(principal, action, resource) when { context.history.denials_1h > 5 };
CEDAR
DOMINUS_TOKEN=$ALICE $D policy set --name probing --file "$WORK/probing.cedar"
echo "  agent-probe tries six keys outside its scope:"
for k in 1 2 3 4 5 6; do expect_exit 2 env DOMINUS_TOKEN="$PROBE" $D kv get "secret/$k"; done
echo "  ...and is now denied even inside it (context.history.denials_1h = 6):"
expect_exit 2 env DOMINUS_TOKEN="$PROBE" $D kv get public/menu
DOMINUS_TOKEN=$ALICE $D history agent-probe
DOMINUS_TOKEN=$ALICE $D policy set --name probing --delete >/dev/null

say "The protocol (decision rules) in force, what each node implements, and its history"
$D operator protocol status

say "Stopping the kernel; audit replay of a stopped node's data dir"
cleanup
DEV_PID=""
$D audit replay --data-dir "$DOMINUS_NODE1_DATA"
echo
echo "Demo complete. Logs and data: $WORK"
