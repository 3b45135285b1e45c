package canon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fileHashHex hashes a file of this package's directory as it is on disk.
func fileHashHex(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestHashDecodesCompiledConstant(t *testing.T) {
	h := Hash()
	if got := hex.EncodeToString(h[:]); got != HashHex() {
		t.Fatalf("Hash() = %s, HashHex() = %s", got, HashHex())
	}
	if len(HashHex()) != 64 || strings.ToLower(HashHex()) != HashHex() {
		t.Fatalf("HashHex() = %q, want 64 lowercase hex digits", HashHex())
	}
}

func TestMustDecodeHashRejectsMalformedConstant(t *testing.T) {
	for _, s := range []string{"", "zz", strings.Repeat("ab", 31), strings.Repeat("ab", 33)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("mustDecodeHash(%q) did not panic", s)
				}
			}()
			mustDecodeHash(s)
		}()
	}
}

func TestTextIsEmbeddedFileAndACopy(t *testing.T) {
	onDisk, err := os.ReadFile(sourcePath)
	if err != nil {
		t.Fatalf("read %s: %v", sourcePath, err)
	}
	first := Text()
	if !bytes.Equal(first, onDisk) {
		t.Fatalf("Text() differs from %s on disk", sourcePath)
	}
	for i := range first {
		first[i] = 'x'
	}
	if !bytes.Equal(Text(), onDisk) {
		t.Fatal("changing the slice returned by Text() changed the canon")
	}
}

func TestTextHeaderMatchesVersion(t *testing.T) {
	lines := strings.Split(string(Text()), "\n")
	if len(lines) < 3 || lines[0] != "# The Dominus Canon" {
		t.Fatalf("first line = %q, want %q", lines[0], "# The Dominus Canon")
	}
	var versionLine string
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) != "" {
			versionLine = l
			break
		}
	}
	if want := "Version " + strconv.Itoa(Version); versionLine != want {
		t.Fatalf("version line = %q, want %q", versionLine, want)
	}
}

func TestTextHasNumberedArticles(t *testing.T) {
	re := regexp.MustCompile(`(?m)^## Article (\d+)\. `)
	matches := re.FindAllStringSubmatch(string(Text()), -1)
	if len(matches) < 9 {
		t.Fatalf("found %d articles, want at least 9", len(matches))
	}
	for i, m := range matches {
		if m[1] != strconv.Itoa(i+1) {
			t.Fatalf("article %d is numbered %s", i+1, m[1])
		}
	}
}

func TestCheckSealed(t *testing.T) {
	if err := CheckSealed(Hash()); err != nil {
		t.Fatalf("CheckSealed(Hash()) = %v, want nil", err)
	}
	other := Hash()
	other[31] ^= 0x01
	err := CheckSealed(other)
	var sme *SealMismatchError
	if !errors.As(err, &sme) {
		t.Fatalf("CheckSealed(other) = %v (%T), want *SealMismatchError", err, err)
	}
	if sme.Sealed != hex.EncodeToString(other[:]) || sme.Binary != HashHex() {
		t.Fatalf("SealMismatchError = %+v, want Sealed=%x Binary=%s", sme, other, HashHex())
	}
	want := "canon: ledger genesis sealed canon " + hex.EncodeToString(other[:]) +
		" but this binary carries canon " + HashHex()
	if err.Error() != want {
		t.Fatalf("error = %q, want %q", err.Error(), want)
	}
	if err := CheckSealed([32]byte{}); err == nil {
		t.Fatal("CheckSealed(zero hash) = nil, want an error")
	}
}

func TestMismatchErrorMessage(t *testing.T) {
	err := error(&MismatchError{Computed: "aa", Compiled: "bb"})
	want := "canon: embedded text hashes to aa but the binary's compiled canon hash is bb"
	if err.Error() != want {
		t.Fatalf("error = %q, want %q", err.Error(), want)
	}
}

// TestTamperedFixtureDiffersByOneWord keeps testdata/articles_tampered.md in
// step with articles.md: same text with exactly one word replaced.
func TestTamperedFixtureDiffersByOneWord(t *testing.T) {
	orig, err := os.ReadFile("articles.md")
	if err != nil {
		t.Fatal(err)
	}
	tampered, err := os.ReadFile(filepath.Join("testdata", "articles_tampered.md"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := strings.Fields(string(orig)), strings.Fields(string(tampered))
	if len(a) != len(b) {
		t.Fatalf("articles.md has %d words, articles_tampered.md %d; regenerate the fixture from articles.md with one word changed", len(a), len(b))
	}
	var diffs []string
	for i := range a {
		if a[i] != b[i] {
			diffs = append(diffs, a[i]+" -> "+b[i])
		}
	}
	if len(diffs) != 1 {
		t.Fatalf("articles_tampered.md differs from articles.md in %d words %v, want exactly 1", len(diffs), diffs)
	}
	t.Logf("tampered word: %s", diffs[0])
}

// TestAltFixtureExtendsDefault keeps testdata/articles_alt.md a different canon
// from the default one.
func TestAltFixtureExtendsDefault(t *testing.T) {
	if fileHashHex(t, "articles.md") == fileHashHex(t, filepath.Join("testdata", "articles_alt.md")) {
		t.Fatal("articles_alt.md hashes the same as articles.md")
	}
}

// TestPureImports enforces that canon stays in the pure core: no I/O, clock
// or randomness.
func TestPureImports(t *testing.T) {
	allowed := map[string]bool{
		"crypto/sha256": true,
		"encoding/hex":  true,
		"fmt":           true,
		"embed":         true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[path] {
				t.Errorf("%s imports %q; canon is pure core (allowed: crypto/sha256, encoding/hex, fmt, embed)", name, path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no non-test Go files found")
	}
}
