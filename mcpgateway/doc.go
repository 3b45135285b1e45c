// Package mcpgateway governs agents that speak the Model Context Protocol:
// it serves MCP to agents (stdio or streamable HTTP) and relays their
// tool calls to upstream MCP servers (commands it starts, or URLs) only
// after the kernel's gate permitted them.
//
// Every tool call is a syscall on op mcp.SERVER.tool.TOOL, judged once
// per resource the tool's rule derives from the arguments (the cleaned
// paths of arg:NAME or args:N1,N2, refused here when relative, holding
// "..", or outside the server's roots; or const:VALUE), with the
// arguments in their RFC 8785 canonical form, whose digest the ledger
// binds to the decision. The upstream receives exactly those canonical
// bytes. On PERMIT of every resource the call runs and the gateway
// reports each effect's completion (status, code, sha256 of the
// canonical result) with its own capability (effect.report); DENY and
// ESCALATE answer the agent with a tool error naming the reason or the
// approval id. An escalated call repeated unchanged after an operator's
// approval redeems the approval. tools/list shows only the tools the
// session's capability names.
//
// Resources and prompts the upstream offers are governed the same way:
// resources/read is op mcp.SERVER.resource.read on the resource's
// cleaned path for a file: URI (which must lie in the server's roots) or
// on the URI itself; prompts/get is op mcp.SERVER.prompt.get on the
// prompt's name. A session lists them only when its capability names
// the op; a refusal answers the request with the gate's reason and never
// reaches the upstream.
//
// The gateway keeps no state beyond its sessions (the agent's token and
// the approvals its escalations are waiting for); the kernel's ledger is
// the record. It talks to the kernel through package client only, and
// imports neither kernel nor fsm.
package mcpgateway
