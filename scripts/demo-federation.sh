#!/usr/bin/env bash
# The Dominus federation demo: a sovereign and two domain kernels (3 real
# agent processes each) on loopback, agents in both domains, a
# cross-domain call without and with a grant, a 2-of-3 canon amendment, a
# federation halt and its 2-operator resume, a witness audit, a passport
# revocation and the loss of a whole domain.
set -euo pipefail
cd "$(dirname "$0")/.."
D=bin/dominus
WORK=$(mktemp -d /tmp/dominus-fed-demo.XXXXXX)
DEV_PID=""
cleanup() {
  if [[ -n "$DEV_PID" ]] && kill -0 "$DEV_PID" 2>/dev/null; then
    kill -INT "$DEV_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.1; done
  fi
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
field() { tr -d '\n' | grep -o "\"$1\": *\"\{0,1\}[^\",}]*" | head -n1 | sed 's/^[^:]*: *"\{0,1\}//'; }
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  for _ in $(seq 1 $((limit * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out after ${limit}s waiting for: $what"; exit 1
}

say "Starting the dev federation: sovereign 127.0.0.11-13, domain a 127.0.0.21-23, domain b 127.0.0.31-33"
$D dev --federation --dir "$WORK/fed" --json >"$WORK/fed.json" 2>"$WORK/fed.err" &
DEV_PID=$!
for _ in $(seq 1 900); do [[ -s "$WORK/fed/federation.env" && -s "$WORK/fed.json" ]] && break; sleep 0.1; done
[[ -s "$WORK/fed/federation.env" ]] || { echo "the federation did not come up:"; cat "$WORK/fed.err"; exit 1; }
# shellcheck disable=SC1091
source "$WORK/fed/federation.env"
for k in "sovereign $SOV_ADDR" "a $A_ADDR" "b $B_ADDR"; do
  set -- $k
  printf '  %-9s ' "$1"; $D status --addr "$2" --json | tr -d '\n ' | sed -n 's/.*"role":"\([a-z]*\)","canon_version":\([0-9]*\).*/role \1, canon v\2/p'
  echo
done
echo "  passports the sovereign issued:"
$D passport list --addr "$SOV_ADDR" --token "$ALICE_TOKEN"

say "Agents in each domain; a's token means nothing in b"
TA=$($D cap grant --entity agent --ops 'kv.*' --resources '*' --addr "$A_ADDR" --token "$A_TOKEN" --json | field token)
TB_LOCAL=$($D cap grant --entity agent --ops 'kv.*' --resources '*' --addr "$B_ADDR" --token "$B_TOKEN" --json | field token)
$D kv put inventory/1 widgets --addr "$A_ADDR" --token "$TA"
$D kv put ledger/1 entries --addr "$B_ADDR" --token "$TB_LOCAL"
if $D kv get ledger/1 --addr "$B_ADDR" --token "$TA" 2>"$WORK/err"; then echo "a's token worked in b"; exit 1; fi
echo "a's token in b: $(cat "$WORK/err")"

say "Cross-domain call a -> b without a grant from b: a's gate permits, b's gate denies"
set +e
$D syscall kv.put b:orders/1 --args paid --remote-token dmc_never-issued-by-b --addr "$A_ADDR" --token "$TA" --wait 10s
rc=$?; set -e
echo "(exit $rc)"

say "b's authority grants a's agent; the same call succeeds and is ledgered in both"
GRANT=$($D cap grant --entity a/agent --ops kv.put,kv.get --resources 'orders/*' --addr "$B_ADDR" --token "$B_TOKEN" --json | field token)
$D syscall kv.put b:orders/1 --args paid --remote-token "$GRANT" --addr "$A_ADDR" --token "$TA" --wait 10s
$D kv get orders/1 --addr "$B_ADDR" --token "$B_TOKEN"
$D ledger tail -n 3 --addr "$B_ADDR" --token "$B_TOKEN"

say "A 2-of-3 canon amendment"
printf '%s\n\nArticle 99. Cross-domain calls are gated twice.\n' "$(head -c 2000 canon/articles.md 2>/dev/null || echo 'Dominus canon')" >"$WORK/canon-v1.md"
AMD=$($D canon amend propose --file "$WORK/canon-v1.md" --addr "$SOV_ADDR" --token "$ALICE_TOKEN" --json | field id)
$D canon amend sign "$AMD" --key "$ALICE_KEY" --addr "$SOV_ADDR"
echo "after one signature: canon v$($D canon show --addr "$SOV_ADDR" --json | field version)"
$D canon amend sign "$AMD" --key "$BOB_KEY" --addr "$SOV_ADDR"
canon_v1() { [[ "$($D status --addr "$1" --json | field canon_version)" == 1 ]]; }
for a in "$SOV_ADDR" "$A_ADDR" "$B_ADDR"; do wait_until 20 "canon v1 at $a" canon_v1 "$a"; done
echo "every kernel reports canon version 1"

say "Federation halt: every domain's gate stops; resume needs two operators"
$D halt --federation --reason "incident drill" --addr "$SOV_ADDR" --token "$ALICE_TOKEN"
halted() { ! $D kv put drill/1 x --addr "$A_ADDR" --token "$TA" >/dev/null 2>&1; }
wait_until 20 "domain a halted" halted
echo "a's agent is denied: $($D kv put drill/1 x --addr "$A_ADDR" --token "$TA" 2>&1 || true)"
$D resume --federation --key "$CAROL_KEY" --addr "$SOV_ADDR"
sleep 3
halted && echo "one operator is not enough: still halted"
$D resume --federation --key "$ALICE_KEY" --addr "$SOV_ADDR"
resumed() { $D kv put drill/1 x --addr "$A_ADDR" --token "$TA"; }
wait_until 20 "domain a resumed" resumed
echo "a's agent works again"

say "Witness audit of domain a's ledger against the heads the sovereign witnessed"
sleep 6
$D ledger export "$WORK/a.export" --addr "$A_ADDR" --token "$A_TOKEN"
$D audit witness --domain a --ledger "$WORK/a.export" --addr "$SOV_ADDR" --token "$ALICE_TOKEN"
cp "$WORK/a.export" "$WORK/a.tampered"
python3 - "$WORK/a.tampered" <<'PY' 2>/dev/null || printf '\x00' | dd of="$WORK/a.tampered" bs=1 seek=400 conv=notrunc status=none
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[400] ^= 0xFF
open(p, "wb").write(bytes(b))
PY
set +e
$D audit witness --domain a --ledger "$WORK/a.tampered" --addr "$SOV_ADDR" --token "$ALICE_TOKEN"
rc=$?; set -e
echo "(tampered export: exit $rc)"; [[ $rc == 4 ]]

say "Sensing: baselines, trust tiers and posture in domain a (1 s baseline windows in dev)"
echo 'forbid(principal, action, resource) when { principal.tier == "probation" };' | $D policy set --name tiers --file - --addr "$A_ADDR" --token "$A_TOKEN"
T3=$($D cap grant --entity agent3 --ops 'kv.*' --resources 'orders/*' --addr "$A_ADDR" --token "$A_TOKEN" --json | field token)
T4=$($D cap grant --entity agent4 --ops 'kv.*' --resources 'orders/*' --addr "$A_ADDR" --token "$A_TOKEN" --json | field token)
T5=$($D cap grant --entity agent5 --ops 'kv.*' --resources 'orders/*' --addr "$B_ADDR" --token "$B_TOKEN" --json | field token)
SENSOR=$($D cap grant --entity pager --ops signal.ingest --resources '*' --addr "$A_ADDR" --token "$A_TOKEN" --json | field token)
echo "agent3, agent4 (domain a) and agent5 (domain b) work steadily for 10 windows ..."
for s in $(seq 1 10); do
  $D kv put "orders/3-$s" v --addr "$A_ADDR" --token "$T3" >/dev/null
  $D kv put "orders/4-$s" v --addr "$A_ADDR" --token "$T4" >/dev/null
  $D kv put "orders/5-$s" v --addr "$B_ADDR" --token "$T5" >/dev/null
  sleep 0.9
done
$D baseline show agent3 --addr "$A_ADDR" --token "$A_TOKEN" | sed -n 1,5p
probe() { # probe ADDR TOKEN: three windows of calls on ops never granted
  for _ in 1 2 3; do
    for op in payments.send email.send exec.run db.drop; do
      for i in 1 2 3 4 5; do $D syscall "$op" "secrets/$i" --addr "$1" --token "$2" >/dev/null 2>&1 || true; done
    done
    sleep 1
  done
}
echo "agent3 in a and agent5 in b suddenly probe ops they were never given, at the same time ..."
probe "$B_ADDR" "$T5" &
PROBE_B=$!
for r in 1 2 3; do
  for op in payments.send email.send exec.run db.drop; do
    for i in 1 2 3 4 5; do $D syscall "$op" "secrets/$i" --addr "$A_ADDR" --token "$T3" >/dev/null 2>&1 || true; done
  done
  printf '  window %d: deviation %s, ' "$r" "$($D baseline show agent3 --addr "$A_ADDR" --token "$A_TOKEN" --json | field deviation)"
  $D trust show agent3 --addr "$A_ADDR" --token "$A_TOKEN"
  sleep 1
done
wait "$PROBE_B"
echo "agent3's in-scope write under the tier policy:"
$D kv put orders/3-after v --addr "$A_ADDR" --token "$T3" || true
say "An external critical signal: posture rises and deviations go to a human"
$D signal ingest --kind incident_level --value 100 --addr "$A_ADDR" --token "$SENSOR"
$D posture show --addr "$A_ADDR" --token "$A_TOKEN"
for i in $(seq 1 60); do
  if ! out=$($D syscall kv.put "orders/4-burst-$i" --args v --addr "$A_ADDR" --token "$T4" 2>&1); then
    echo "agent4's burst, call $i: $out"; break
  fi
done
sleep 0.5; $D approvals list --addr "$A_ADDR" --token "$A_TOKEN" | sed -n 1,4p
$D signal ingest --kind incident_level --value 0 --addr "$A_ADDR" --token "$SENSOR"
$D posture history --addr "$A_ADDR" --token "$A_TOKEN"
$D posture similar --signal incident_level=95 --addr "$A_ADDR" --token "$A_TOKEN"

say "The master cortex on the sovereign, from gossip signals alone, noticed both domains misbehaving together"
insights() { [[ "$($D cortex insights --addr "$SOV_ADDR" --token "$ALICE_TOKEN" --json | tr -d ' \n')" != "[]" ]]; }
wait_until 30 "a cross-domain insight" insights
$D cortex insights --addr "$SOV_ADDR" --token "$ALICE_TOKEN"

say "Revoking domain b's passport: a and the sovereign refuse b's bus events"
PPB=$($D status --addr "$B_ADDR" --json | tr -d '\n ' | sed -n 's/.*"passport":{"id":"\([^"]*\)".*/\1/p')
$D passport revoke "$PPB" --addr "$SOV_ADDR" --token "$ALICE_TOKEN"
a_knows() { $D passport list --addr "$A_ADDR" --token "$A_TOKEN" --json | tr -d '\n ' | grep -q "\"id\":\"$PPB\"[^}]*\"revoked\":true"; }
wait_until 20 "a hears of the revocation" a_knows
GRANT_A=$($D cap grant --entity b/agent --ops kv.put --resources 'orders/*' --addr "$A_ADDR" --token "$A_TOKEN" --json | field token)
set +e
$D syscall kv.put a:orders/from-b --args x --remote-token "$GRANT_A" --addr "$B_ADDR" --token "$TB_LOCAL" --wait 5s
set -e
$D bus stats --addr "$A_ADDR" --token "$A_TOKEN"

say "Killing every process of domain b; a keeps governing"
for p in $B_PIDS; do kill -9 "$p" 2>/dev/null || true; done
$D kv put after-b/1 still-here --addr "$A_ADDR" --token "$TA"
say "Federation demo complete"
echo "Logs and data (left for inspection): $WORK"
