package api

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestSigningMessages pins the bytes of every operator signing message on
// fixed inputs. The expected hex is what the ledger verified signatures
// against before the builders lived here; a change breaks every signature
// already given.
func TestSigningMessages(t *testing.T) {
	textHash := sha256.Sum256([]byte("canon text"))
	oldKey, newKey := make([]byte, 32), make([]byte, 32)
	for i := range oldKey {
		oldKey[i], newKey[i] = byte(i), byte(255-i)
	}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"amendment", AmendmentMessage("amend-7", textHash[:]),
			"646f6d696e75732d63616e6f6e2d616d656e646d656e742d763100616d656e642d370034643634666461373661656564663065386435343539353639656361303836376264353466633963333232366436626331363630363733643135303132346532"},
		{"amendment empty", AmendmentMessage("", nil),
			"646f6d696e75732d63616e6f6e2d616d656e646d656e742d76310000"},
		{"resume", ResumeMessage("halt-3"),
			"646f6d696e75732d66656465726174696f6e2d726573756d652d76310068616c742d33"},
		{"resume empty", ResumeMessage(""),
			"646f6d696e75732d66656465726174696f6e2d726573756d652d763100"},
		{"rotate keys", RotateKeysMessage("sov-1", 2),
			"646f6d696e75732d66656465726174696f6e2d6b6579732d763100736f762d310032"},
		{"rotate keys max epoch", RotateKeysMessage("sov-1", 18446744073709551615),
			"646f6d696e75732d66656465726174696f6e2d6b6579732d763100736f762d31003138343436373434303733373039353531363135"},
		{"rekey", RekeyMessage("alice", oldKey, newKey),
			"646f6d696e75732d6f70657261746f722d72656b65792d763100616c69636500303030313032303330343035303630373038303930613062306330643065306631303131313231333134313531363137313831393161316231633164316531660066666665666466636662666166396638663766366635663466336632663166306566656565646563656265616539653865376536653565346533653265316530"},
		{"rekey empty", RekeyMessage("", nil, nil),
			"646f6d696e75732d6f70657261746f722d72656b65792d7631000000"},
		{"protocol", ProtocolMessage("sov-1", 4),
			"646f6d696e75732d70726f746f636f6c2d757067726164652d763100736f762d310034"},
		{"protocol max version", ProtocolMessage("", 65535),
			"646f6d696e75732d70726f746f636f6c2d757067726164652d763100003635353335"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(tt.got); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestLimits pins the public limits: they are protocol.
func TestLimits(t *testing.T) {
	tests := []struct {
		name      string
		got, want int
	}{
		{"MaxRequestIDBytes", MaxRequestIDBytes, 128},
		{"MaxKeyBytes", MaxKeyBytes, 1024},
		{"MaxValueBytes", MaxValueBytes, 1048576},
		{"MaxArgsBytes", MaxArgsBytes, 65536},
		{"MaxPolicyBytes", MaxPolicyBytes, 65536},
		{"MaxCanonBytes", MaxCanonBytes, 262144},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}
