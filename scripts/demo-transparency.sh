#!/usr/bin/env bash
# Verifiable history: an auditor proves that one payment is in a kernel's
# ledger holding only a signed checkpoint, the proof and the kernel's
# public keys — no server, no ledger — and then catches a forged history
# (a payment erased, re-signed with a stolen node key) by a consistency
# check against the checkpoint it kept.
set -euo pipefail
cd "$(dirname "$0")/.."
D=bin/dominus
WORK=$(mktemp -d /tmp/dominus-transparency.XXXXXX)
AUD="$WORK/auditor"
mkdir -p "$AUD"
DEV_PID=""
cleanup() {
  if [[ -n "$DEV_PID" ]] && kill -0 "$DEV_PID" 2>/dev/null; then
    kill -INT "$DEV_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.1; done
  fi
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect_exit() { local want=$1; shift; set +e; "$@"; local rc=$?; set -e; echo "  (exit $rc)"; [[ $rc == "$want" ]] || { echo "expected exit $want"; exit 1; }; }
seq_of() { tr -d '\n ' | sed -n 's/.*"seq":\([0-9]*\).*/\1/p'; }

say "Starting a 3-node kernel on 127.0.161.11-13 (dominus dev) in $WORK/dev"
$D dev --dir "$WORK/dev" --base-ip 127.0.161.11 --json >"$WORK/dev.json" 2>"$WORK/dev.err" &
DEV_PID=$!
for _ in $(seq 1 300); do [[ -s "$WORK/dev.json" ]] && break; sleep 0.1; done
[[ -s "$WORK/dev.json" ]] || { echo "dev did not come up:"; cat "$WORK/dev.err"; exit 1; }
# shellcheck disable=SC1091
source "$WORK/dev/env.sh"

say "An agent makes 12 payments; each is a gate decision in the ledger"
PAYER=$($D cap grant --entity agent-pay --ops payments.send --resources 'acct/*' --ttl 1h 2>/dev/null | tail -1)
echo "  issued: agent-pay (payments.send on acct/*)"
for i in $(seq 1 12); do
  S=$(DOMINUS_TOKEN=$PAYER $D syscall payments.send "acct/$i" --args "{\"amount\":$((i * 100))}" --json | seq_of)
  [[ $i == 7 ]] && PAY_SEQ=$S
done
echo "  payment 7 (700 to acct/7) is ledger seq $PAY_SEQ"

say "The leader signs a checkpoint; the auditor keeps it, and the kernel's public keys"
$D ledger checkpoint --sign >"$AUD/checkpoint.note"
cat "$AUD/checkpoint.note"
$D ledger checkpoint --public-key >"$AUD/kernel.keys"
cat "$AUD/kernel.keys"

say "The kernel proves payment 7's inclusion against that checkpoint"
$D ledger prove "$PAY_SEQ" --checkpoint "$AUD/checkpoint.note" --json >"$AUD/payment7.proof"
$D ledger prove "$PAY_SEQ" --checkpoint "$AUD/checkpoint.note"

say "The auditor verifies offline: only the checkpoint, the proof and the keys"
expect_exit 0 $D audit verify-proof --proof "$AUD/payment7.proof" --checkpoint "$AUD/checkpoint.note" --kernel-key "$AUD/kernel.keys"

say "A doctored proof (one byte of the event record changed) fails"
python3 - "$AUD/payment7.proof" "$AUD/doctored.proof" <<'PY'
import base64, json, sys
p = json.load(open(sys.argv[1]))
rec = bytearray(base64.b64decode(p["event_record"]))
rec[len(rec) // 2] ^= 1
p["event_record"] = base64.b64encode(bytes(rec)).decode()
json.dump(p, open(sys.argv[2], "w"))
PY
expect_exit 4 $D audit verify-proof --proof "$AUD/doctored.proof" --checkpoint "$AUD/checkpoint.note" --kernel-key "$AUD/kernel.keys"

say "The ledger grows; a later checkpoint is consistent with the one the auditor holds"
for i in $(seq 13 20); do DOMINUS_TOKEN=$PAYER $D syscall payments.send "acct/$i" --args "{\"amount\":$((i * 100))}" >/dev/null; done
$D ledger checkpoint --sign >"$AUD/later.note"
$D ledger consistency --from "$AUD/checkpoint.note" --to "$AUD/later.note" --json >"$AUD/honest.consistency"
expect_exit 0 $D audit verify-proof --proof "$AUD/honest.consistency" --checkpoint "$AUD/checkpoint.note" --kernel-key "$AUD/kernel.keys"

say "Stopping the kernel; an operator with node 1's data dir and key erases payment 7"
cleanup
DEV_PID=""
HELD_SIZE=$(sed -n 2p "$AUD/checkpoint.note")
go run ./scripts/forge-history --data-dir "$DOMINUS_NODE1_DATA" --erase "$PAY_SEQ" --out "$WORK/forged" \
  --held-size "$HELD_SIZE" --proof-out "$WORK/forged.consistency"
echo "  the forged history replays cleanly on its own (a valid hash chain):"
$D audit replay --data-dir "$WORK/forged"

say "The auditor checks the forged history against the checkpoint it kept: caught"
expect_exit 4 $D audit verify-proof --proof "$WORK/forged.consistency" --checkpoint "$AUD/checkpoint.note" --kernel-key "$AUD/kernel.keys"
mkdir -p "$AUD/held" && cp "$AUD/checkpoint.note" "$AUD/held/$(printf '%020d' "$HELD_SIZE").note"
expect_exit 4 $D audit replay --data-dir "$WORK/forged" --checkpoints "$AUD/held"

say "The real history still replays, and matches every checkpoint its node stored"
$D audit replay --data-dir "$DOMINUS_NODE1_DATA"
echo
echo "Demo complete. Auditor's files: $AUD; logs and data: $WORK"
