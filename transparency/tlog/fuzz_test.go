package tlog

import (
	"crypto/ed25519"
	"testing"
)

// FuzzParseCheckpoint: a text parses only in its canonical form.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add(Checkpoint{KernelID: "k", Size: 3, Root: make([]byte, 32), Head: make([]byte, 32), Time: 5}.Text())
	f.Add("dominus/k\n0\n\nhead \ntime 0\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCheckpoint(text)
		if err == nil && c.Text() != text {
			t.Fatalf("%q parsed, but its canonical text is %q", text, c.Text())
		}
	})
}

// FuzzOpen: any bytes either open under the kernel's key, with a
// canonical text, or are refused; nothing panics.
func FuzzOpen(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	name := KeyName("k")
	vk, _ := VerifierKey(name, key.Public().(ed25519.PublicKey))
	keys, _ := ParseKeys(vk)
	good, _ := Sign(Checkpoint{KernelID: "k", Size: 3, Root: make([]byte, 32), Head: make([]byte, 32), Time: 5}, NewSigner(name, key))
	f.Add(good)
	f.Add([]byte("dominus/k\n\n— dominus/k AAAA\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := Open(msg, keys)
		if err == nil && s.Text() != Checkpoint(s.Checkpoint).Text() {
			t.Fatal("opened a checkpoint whose text is not canonical")
		}
		_, _, _ = SplitNote(msg)
	})
}
