//go:build canon_tampered

package canon

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestVerifyTamperedFails(t *testing.T) {
	err := Verify()
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("Verify() = %v (%T), want *MismatchError", err, err)
	}
	if want := fileHashHex(t, filepath.Join("testdata", "articles_tampered.md")); me.Computed != want {
		t.Errorf("Computed = %s, want %s", me.Computed, want)
	}
	if want := fileHashHex(t, "articles.md"); me.Compiled != want {
		t.Errorf("Compiled = %s, want the default canon hash %s", me.Compiled, want)
	}
}
