package checker

import (
	"testing"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/jepsen/history"
)

// A refusal before dedup names the request id as its subject; any other
// event whose subject is not the op's key is a violation.
func TestRequestIDSubjectOfRefusalsBeforeDedup(t *testing.T) {
	c := RequestIDs{SubjectIsKey: true}
	p := history.Pair{Invoke: history.Op{RequestID: "r1", Key: "agent-7", F: "grant"}, Complete: history.Op{Seq: 5}}
	for _, tc := range []struct {
		ev   api.Event
		want int
	}{
		{api.Event{Seq: 5, Subject: "agent-7", Decision: "permit", Reason: "ok"}, 0},
		{api.Event{Seq: 5, Subject: "r1", Decision: "deny", Reason: "quota_exceeded"}, 0},
		{api.Event{Seq: 5, Subject: "r1", Decision: "DENY", Reason: "request_id_reused"}, 0},
		{api.Event{Seq: 5, Subject: "r1", Decision: "permit", Reason: "ok"}, 1},
		{api.Event{Seq: 5, Subject: "r1", Decision: "deny", Reason: "forbidden"}, 1},
		{api.Event{Seq: 5, Subject: "someone-else", Decision: "deny", Reason: "quota_exceeded"}, 1},
	} {
		var v violations
		c.same(&v, "n1", p, tc.ev)
		if got := len(v.list); got != tc.want {
			t.Errorf("%+v: %d violations %v, want %d", tc.ev, got, v.list, tc.want)
		}
	}
}
