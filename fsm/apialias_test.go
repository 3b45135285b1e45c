package fsm

import (
	"bytes"
	"testing"

	"github.com/dominus-kernel/dominus/api"
)

// TestAPINames checks the names a client compares answers with against
// the ledger's own: api cannot import fsm, so the reason name is written
// twice.
func TestAPINames(t *testing.T) {
	if got := ReasonNotFound.String(); got != api.ReasonNotFound {
		t.Errorf("ReasonNotFound.String() = %q, api.ReasonNotFound = %q", got, api.ReasonNotFound)
	}
}

// TestSigningMessagesAreAPIs checks that the ledger verifies exactly the
// bytes a client signs (api/signing_test.go pins those bytes).
func TestSigningMessagesAreAPIs(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	tests := []struct {
		name         string
		inFSM, inAPI []byte
	}{
		{"amendment", AmendmentMessage("a-1", k1), api.AmendmentMessage("a-1", k1)},
		{"resume", ResumeMessage("h-1"), api.ResumeMessage("h-1")},
		{"rotate keys", RotateKeysMessage("sov", 7), api.RotateKeysMessage("sov", 7)},
		{"rekey", RekeyMessage("alice", k1, k2), api.RekeyMessage("alice", k1, k2)},
		{"protocol", ProtocolMessage("sov", 4), api.ProtocolMessage("sov", 4)},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.inFSM, tt.inAPI) {
			t.Errorf("%s: fsm %x, api %x", tt.name, tt.inFSM, tt.inAPI)
		}
	}
}
