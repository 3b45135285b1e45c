package senseeval

import (
	"os"
	"testing"

	"github.com/dominus-kernel/dominus/sense"
)

func TestDebugAlerts(t *testing.T) {
	if os.Getenv("SENSE_DEBUG") == "" {
		t.Skip()
	}
	p := Tuning().Smoke()
	w := Generate(p, 1)
	s, _ := sense.New(sense.DefaultConfig())
	attacked := map[int32]bool{}
	for _, e := range w.Episodes {
		attacked[e.Entity] = true
	}
	n := 0
	for k, ev := range w.Events {
		e := &w.Entities[ev.Entity]
		d := sense.DecisionPermit
		if ev.Deny {
			d = sense.DecisionDeny
		}
		or := s.Observe(e.Name, sense.Outcome{Time: ev.T, Op: ev.Op, Resource: ev.Resource, Decision: d, Bytes: ev.Bytes, Error: ev.Err, Seq: uint64(k + 1), Peer: e.Peer, Parent: e.Parent})
		if or.Alert && ev.T > w.DayNs && !attacked[ev.Entity] && e.Drift == 0 && n < 40 {
			n++
			t.Logf("%s rate %.2f batch %v@%d min %d: %s obs %d exp %v surprise %d thr %d", e.Name, e.Rate, e.Batch, e.BatchMinute, (ev.T/minuteNs)%60, or.Metric, or.Observed, or.Expected, or.Surprise, or.Threshold)
		}
	}
}
