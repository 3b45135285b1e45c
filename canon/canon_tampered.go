//go:build canon_tampered

package canon

import _ "embed"

// Version is the version number stated on the second line of the embedded
// canon ("Version N").
const Version = 1

// compiledHashHex is deliberately the DEFAULT canon's hash while the embedded
// text is testdata/articles_tampered.md (articles.md with one word changed):
// this build models a binary whose canon text was edited without the
// compiled constant, and Verify must fail in it.
const compiledHashHex = "86e5de40ced67f1620546d513e0a159d8a5378d5b4cabe4bf6aa18f10b6ed761"

const sourcePath = "testdata/articles_tampered.md"

//go:embed testdata/articles_tampered.md
var embedded string
