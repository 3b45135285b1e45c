// Package canon owns the constitution of a Dominus federation: the frozen
// text of its articles, embedded in the binary, and the SHA-256 of that text,
// compiled in as a constant.
//
// # Invariants
//
//   - Every boot calls Verify before anything else; a kernel whose embedded
//     text does not hash to the compiled constant refuses to start.
//   - A ledger's genesis seals Hash(); a node opening an existing ledger calls
//     CheckSealed with the sealed value and refuses to serve it on mismatch.
//   - Text returns a copy: nothing outside this package can alter the canon
//     of a running process.
//   - The text changes only through amendment: M-of-N distinct operators sign
//     a new text, the amendment is ledgered, and each kernel adopts it as it
//     acknowledges. This package only holds the text a binary was built with.
//
// # Imports
//
// canon is part of the pure core. It may import only the standard library's
// hashing, encoding, formatting and embed packages: no I/O, no clock, no
// randomness, no os or net. A test enforces this.
//
// # Build tags
//
// The embedded text and constant are selected at build time:
//
//   - default: articles.md, with its own hash.
//   - canon_alt: testdata/articles_alt.md, a different but self-consistent
//     canon with its own hash. Kernel tests build a node with it to prove a
//     node carrying another canon refuses a ledger sealed with the default.
//   - canon_tampered: testdata/articles_tampered.md (articles.md with one word
//     changed) with the DEFAULT hash, so Verify fails. It models a binary
//     whose text was edited without its constant.
//
// # README: amending the canon in development
//
// In a running federation the canon changes only by ledgered M-of-N
// amendment. During development of Dominus itself, to change the text a
// release ships with:
//
//  1. Edit canon/articles.md. If the change is a new version of the canon,
//     update the "Version N" line and the Version constant in
//     canon_default.go together (a test checks they agree).
//  2. Run `go test ./canon`. The guard test hashes articles.md on disk and
//     fails, printing the new SHA-256.
//  3. Put that value in compiledHashHex in canon_default.go and in
//     canon_tampered.go (the tampered build must keep the default constant),
//     and regenerate testdata/articles_tampered.md from the new text with one
//     word changed.
//  4. Run `go test ./canon` again; it passes.
//
// A ledger sealed with the old text will not open under the new binary;
// development data directories must be recreated.
//
// The same steps apply to testdata/articles_alt.md and canon_alt.go, built
// with -tags canon_alt.
package canon
