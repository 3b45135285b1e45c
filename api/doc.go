// Package api defines the JSON shapes of the Dominus HTTP API (/v1/...):
// the request and response bodies shared by the kernel's HTTP server and
// the public Go client. It holds types and constants only.
//
// Imports: the standard library only.
package api
