//go:build canon_alt && !canon_tampered

package canon

import _ "embed"

// Version is the version number stated on the second line of the embedded
// canon ("Version N"). The alternative canon is a later, different text.
const Version = 2

// compiledHashHex is the SHA-256 of testdata/articles_alt.md: the alternative
// canon is self-consistent, so Verify passes, but its hash differs from the
// default canon's. A node built with it must refuse a ledger sealed with the
// default canon.
const compiledHashHex = "d96e1f9256421ec09863ce8dfa3adb08ab2f2989e9a156ea8e0ec389329c72ce"

const sourcePath = "testdata/articles_alt.md"

//go:embed testdata/articles_alt.md
var embedded string
