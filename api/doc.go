// Package api defines the JSON shapes of the Dominus HTTP API (/v1/...)
// — described for other languages in openapi.json (OpenAPI 3.0; a test
// keeps it in step with the routes and types):
// the request and response bodies shared by the kernel's HTTP server and
// the public Go client. It holds types and constants, the public limits a
// request is checked against and the names a client compares answers with
// (ledger.go), and the builders of the messages operators sign
// (signing.go), which the ledger verifies against byte for byte.
//
// Invariants:
//   - The limits and signing messages are protocol: fsm defines its own
//     names for them in terms of these, so the edge, the ledger and every
//     client agree; signing_test.go pins their bytes.
//   - Everything here is pure (determinism_test.go): the FSM calls the
//     signing builders inside Apply.
//
// Imports: the standard library only.
package api
