//go:build !canon_alt && !canon_tampered

package canon

import _ "embed"

// Version is the version number stated on the second line of the embedded
// canon ("Version N").
const Version = 1

// compiledHashHex is the SHA-256 of articles.md. It is compiled into the
// binary independently of the embedded text so that a binary whose text was
// altered without updating the constant refuses to start.
const compiledHashHex = "86e5de40ced67f1620546d513e0a159d8a5378d5b4cabe4bf6aa18f10b6ed761"

// sourcePath names the embedded file, relative to this package. Tests use it
// to hash the file on disk.
const sourcePath = "articles.md"

//go:embed articles.md
var embedded string
