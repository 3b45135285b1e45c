//go:build canon_alt && !canon_tampered

package canon

import (
	"path/filepath"
	"testing"
)

func TestCompiledHashMatchesAltArticles(t *testing.T) {
	if got := fileHashHex(t, filepath.Join("testdata", "articles_alt.md")); got != compiledHashHex {
		t.Fatalf("testdata/articles_alt.md hashes to %s but compiledHashHex is %s; set it to %s in canon_alt.go", got, compiledHashHex, got)
	}
}

func TestVerifyAlt(t *testing.T) {
	if err := Verify(); err != nil {
		t.Fatalf("Verify() = %v, want nil", err)
	}
}

func TestAltRefusesDefaultSeal(t *testing.T) {
	def := mustDecodeHash(fileHashHex(t, "articles.md"))
	if err := CheckSealed(def); err == nil {
		t.Fatal("CheckSealed(default canon hash) = nil in a canon_alt build, want *SealMismatchError")
	}
}
