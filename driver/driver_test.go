package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func roundTrip(t *testing.T, h Handler, reqs ...Request) []Response {
	t.Helper()
	var in bytes.Buffer
	for _, r := range reqs {
		b, _ := json.Marshal(r)
		in.Write(append(b, '\n'))
	}
	in.WriteString("not json\n")
	var out bytes.Buffer
	if err := Serve(context.Background(), &in, &out, h); err != nil {
		t.Fatal(err)
	}
	var resps []Response
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r Response
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		resps = append(resps, r)
	}
	if len(resps) != len(reqs)+1 || resps[len(resps)-1].Status != "failed" {
		t.Fatalf("responses: %+v", resps)
	}
	return resps[:len(reqs)]
}

func TestWebhookAllowListAndIdempotencyKey(t *testing.T) {
	var gotID string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotID = r.Header.Get("X-Dominus-Syscall-Id")
		if strings.HasSuffix(r.URL.Path, "/fail") {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	h := Webhook([]string{srv.URL + "/hooks/"}, 5*time.Second)
	rs := roundTrip(t, h,
		Request{ID: 7, Op: "webhook.call", Resource: srv.URL + "/hooks/ok", Args: `{"a":1}`},
		Request{ID: 8, Op: "webhook.call", Resource: srv.URL + "/hooks/fail"},
		Request{ID: 9, Op: "webhook.call", Resource: srv.URL + "/elsewhere"},
		Request{ID: 10, Op: "exec.run", Resource: srv.URL + "/hooks/ok"},
	)
	if rs[0].Status != "ok" || rs[0].ID != 7 || rs[0].Code != 200 {
		t.Fatalf("ok call: %+v", rs[0])
	}
	if rs[1].Status != "failed" || rs[1].Code != 500 || gotID != "8" {
		t.Fatalf("failing call: %+v (id header %q)", rs[1], gotID)
	}
	if rs[2].Status != "failed" || rs[2].Code != -4 || rs[3].Code != -3 {
		t.Fatalf("refusals: %+v %+v", rs[2], rs[3])
	}
}

func TestExecAllowList(t *testing.T) {
	h := Exec([]string{"/bin/sh"}, 5*time.Second)
	rs := roundTrip(t, h,
		Request{ID: 1, Op: "exec.run", Resource: "/bin/sh", Args: `["-c","test \"$DOMINUS_SYSCALL_ID\" = 1"]`},
		Request{ID: 2, Op: "exec.run", Resource: "/bin/sh", Args: `["-c","exit 3"]`},
		Request{ID: 3, Op: "exec.run", Resource: "/bin/rm", Args: `["-rf","/nope"]`},
		Request{ID: 4, Op: "exec.run", Resource: "/bin/sh", Args: `not-an-array`},
	)
	if rs[0].Status != "ok" || rs[1].Code != 3 || rs[2].Code != -4 || rs[3].Code != -2 {
		t.Fatalf("exec: %+v", rs)
	}
}
