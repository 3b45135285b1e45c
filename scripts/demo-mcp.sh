#!/usr/bin/env bash
# The MCP gateway story: a 3-node kernel, `dominus mcp serve` in front of
# the reference filesystem MCP server (@modelcontextprotocol/server-filesystem,
# installed by `make mcp-deps`), and an MCP agent whose every tool call is
# judged by the gate before it reaches the server.
set -euo pipefail
cd "$(dirname "$0")/.."
D=bin/dominus
WORK=$(mktemp -d /tmp/dominus-mcp-demo.XXXXXX)
FS_ENTRY="${XDG_CACHE_HOME:-$HOME/.cache}/dominus/mcp-npm/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
[[ -f "$FS_ENTRY" ]] || { echo "the filesystem MCP server is not installed: run make mcp-deps (needs npm)"; exit 1; }
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
go build -o bin/mcpagent ./scripts/mcpagent

say "Starting a 3-node kernel (dominus dev, 127.0.152.11-13) in $WORK/dev"
$D dev --dir "$WORK/dev" --base-ip 127.0.152.11 --json >"$WORK/dev.json" 2>"$WORK/dev.err" &
PIDS+=($!)
for _ in $(seq 1 300); do [[ -s "$WORK/dev.json" ]] && break; sleep 0.1; done
[[ -s "$WORK/dev.json" ]] || { echo "dev did not come up:"; cat "$WORK/dev.err"; exit 1; }
# shellcheck disable=SC1091
source "$WORK/dev/env.sh"

mkdir -p "$WORK/files/allowed" "$WORK/files/outside"
echo "quarterly numbers: up" >"$WORK/files/allowed/notes.txt"
say "An agent capability for work/allowed only; a gateway capability that may report mcp.fs effects"
AGENT=$($D cap grant --entity claude --ops mcp.fs.tool.read_file,mcp.fs.tool.write_file,mcp.fs.tool.move_file --resources "$WORK/files/allowed/*" --ttl 1h 2>/dev/null | tail -1)
GATEWAY=$($D cap grant --entity mcp-gateway --ops effect.report --resources 'mcp.fs.*' --ttl 1h 2>/dev/null | tail -1)
echo "  issued: claude (read_file, write_file, move_file under files/allowed); mcp-gateway (effect.report on mcp.fs.*)"
cat >"$WORK/writes.cedar" <<'CEDAR'
@escalate("an agent's file writes need a human")
forbid(principal, action == Dominus::Action::"mcp.fs.tool.write_file", resource);
CEDAR
$D policy set --name writes --file "$WORK/writes.cedar"

cat >"$WORK/mcp.yaml" <<YAML
kernel:
  addr: $DOMINUS_HTTP_ADDR
servers:
  - name: fs
    command: node
    args: ["$FS_ENTRY", "$WORK/files"]
    roots: ["$WORK/files"]
    tools:
      read_file: {resource: "arg:path"}
      write_file: {resource: "arg:path"}
      move_file: {resource: "args:source,destination"}
      list_directory: {resource: "arg:path"}
YAML
say "dominus mcp serve --config mcp.yaml --listen 127.0.152.20:8700 (the filesystem server may touch all of $WORK/files)"
DOMINUS_GATEWAY_TOKEN=$GATEWAY $D mcp serve --config "$WORK/mcp.yaml" --listen 127.0.152.20:8700 2>"$WORK/gateway.log" &
PIDS+=($!)
for _ in $(seq 1 300); do grep -q "serving streamable HTTP" "$WORK/gateway.log" 2>/dev/null && break; sleep 0.1; done

coproc AGENT_IO { DOMINUS_TOKEN=$AGENT bin/mcpagent --url http://127.0.152.20:8700/mcp; }
PIDS+=("$AGENT_IO_PID")
agent() { echo "  agent> $1"; echo "$1" >&"${AGENT_IO[1]}"; IFS= read -r line <&"${AGENT_IO[0]}"; echo "  $line"; LAST=$line; }

say "tools/list shows only what the capability names"
agent "list"
say "A permitted read"
agent "call read_file {\"path\":\"$WORK/files/allowed/notes.txt\"}"
say "A write outside the capability: denied, nothing written"
agent "call write_file {\"path\":\"$WORK/files/outside/evil.txt\",\"content\":\"x\"}"
ls "$WORK/files/outside"
say "A move whose destination is outside: denied"
agent "call move_file {\"source\":\"$WORK/files/allowed/notes.txt\",\"destination\":\"$WORK/files/outside/notes.txt\"}"
say "A path with .. is refused by the gateway"
agent "call read_file {\"path\":\"$WORK/files/allowed/../outside/evil.txt\"}"
say "A write inside the scope escalates to an operator"
WRITE="call write_file {\"path\":\"$WORK/files/allowed/summary.txt\",\"content\":\"summary approved by a human\"}"
agent "$WRITE"
APR=$(grep -o 'apr-[0-9]*' <<<"$LAST" | head -1)
$D approvals approve "$APR"
say "The agent repeats the identical call: the gateway redeems $APR"
agent "$WRITE"
cat "$WORK/files/allowed/summary.txt"; echo

say "The ledger: each decision, and each permitted effect's completion reported by the gateway"
$D ledger tail -n 14
$D effects
echo
echo "MCP demo complete. Logs and data (left for inspection): $WORK"
