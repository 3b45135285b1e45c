package passport

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden encoding fixtures")

// The fixtures under testdata are protocol: kernels exchange and sign
// these bytes. A change in them is a change of format and must come with
// a new version byte.
func goldenFixtures() map[string][]byte {
	var r Revocations
	for _, id := range []string{"pp-9", "pp-10", "pp-7"} {
		if err := r.Add(id, t0+hour, t0); err != nil {
			panic(err)
		}
	}
	return map[string][]byte{
		"passport_v1.hex":         signed().Encode(),
		"passport_v1_signing.hex": sample().SigningBytes(),
		"revocations_v1.hex":      r.Encode(),
	}
}

func TestGolden(t *testing.T) {
	fixtures := goldenFixtures()
	for _, name := range []string{"passport_v1.hex", "passport_v1_signing.hex", "revocations_v1.hex"} {
		data := fixtures[name]
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, []byte(hex.EncodeToString(data)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./passport -run Golden -update to create)", err)
		}
		if got := hex.EncodeToString(data); got != strings.TrimSpace(string(want)) {
			t.Errorf("%s: encoding differs from its golden fixture:\n got %s\nwant %s", name, got, want)
		}
	}
	// The pinned passport decodes, verifies under the fixed key, and
	// re-encodes to the same bytes; its signature covers the pinned
	// signing bytes.
	raw := readHex(t, "passport_v1.hex")
	p, err := Decode(raw)
	if err != nil {
		t.Fatalf("golden passport does not decode: %v", err)
	}
	if err := Verify(p, trusted, t0, nil); err != nil {
		t.Fatalf("golden passport does not verify: %v", err)
	}
	if !bytes.Equal(p.Encode(), raw) {
		t.Fatal("golden passport re-encodes differently")
	}
	if sb := readHex(t, "passport_v1_signing.hex"); !bytes.Equal(p.SigningBytes(), sb) {
		t.Fatal("golden passport's signing bytes differ from their fixture")
	}
	rv, err := DecodeRevocations(readHex(t, "revocations_v1.hex"))
	if err != nil || !rv.Contains("pp-10") || rv.Len() != 3 {
		t.Fatalf("golden revocations: %v", err)
	}
}

func readHex(t *testing.T, name string) []byte {
	t.Helper()
	s, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(s)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
