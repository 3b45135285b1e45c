package fsm

import (
	"strings"
	"testing"
)

// TestDecisionJSONIsLowerCaseString: the API's spelling of a decision is
// its upper-case name for people, in lower case.
func TestDecisionJSONIsLowerCaseString(t *testing.T) {
	want := map[Decision]string{DecisionNone: "none", DecisionPermit: "permit", DecisionDeny: "deny", DecisionEscalate: "escalate"}
	for d := Decision(0); d < 8; d++ {
		if got := d.JSON(); got != strings.ToLower(d.String()) || (want[d] != "" && got != want[d]) {
			t.Errorf("Decision(%d).JSON() = %q, String() = %q", d, got, d.String())
		}
	}
}
