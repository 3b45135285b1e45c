// Package api defines the JSON shapes of the Dominus HTTP API (/v1/...)
// — described for other languages in openapi.json (OpenAPI 3.0; a test
// keeps it in step with the routes and types):
// the request and response bodies shared by the kernel's HTTP server and
// the public Go client. It holds types and constants only.
//
// Imports: the standard library only.
package api
