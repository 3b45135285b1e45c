package senseeval

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/dominus-kernel/dominus/sense"
)

func TestDebugAlerts(t *testing.T) {
	if os.Getenv("SENSE_DEBUG") == "" {
		t.Skip()
	}
	class, _ := strconv.Atoi(os.Getenv("SENSE_DEBUG"))
	p := Tuning().Smoke()
	if os.Getenv("SENSE_HELD") != "" {
		p = HeldOut().Smoke()
	}
	if os.Getenv("SENSE_FULL") != "" {
		p = Tuning()
	}
	w := Generate(p, 2)
	s, _ := sense.New(sense.DefaultConfig())
	attacked := map[int32]bool{}
	for _, e := range w.Episodes {
		attacked[e.Entity] = true
	}
	best := map[int32]sense.Report{}
	n := 0
	for k, ev := range w.Events {
		e := &w.Entities[ev.Entity]
		d := sense.DecisionPermit
		if ev.Deny {
			d = sense.DecisionDeny
		}
		jr := s.Judge(e.Name, sense.Call{Time: ev.T, Op: ev.Op, Resource: ev.Resource, Bytes: ev.Bytes, Peer: e.Peer, Parent: e.Parent})
		or := s.Observe(e.Name, sense.Outcome{Time: ev.T, Op: ev.Op, Resource: ev.Resource, Decision: d, Bytes: ev.Bytes, Error: ev.Err, Seq: uint64(k + 1), Peer: e.Peer, Parent: e.Parent})
		if class == 0 && or.Alert && ev.T > w.DayNs && !attacked[ev.Entity] && e.Drift == 0 && n < 40 && rand.IntN(40) == 0 {
			n++
			t.Logf("%s rate %.2f batch %v@%d min %d: %s obs %d exp %v surprise %d thr %d", e.Name, e.Rate, e.Batch, e.BatchMinute, (ev.T/minuteNs)%60, or.Metric, or.Observed, or.Expected, or.Surprise, or.Threshold)
		}
		if ev.Episode == 3 && ev.Attack && class == 1 && rand.IntN(20) == 0 {
			n++
			t.Logf("%s %s: %s obs %d exp %v surprise %d thr %d score %d", ev.Op, e.Name, jr.Metric, jr.Observed, jr.Expected, jr.Surprise, jr.Threshold, jr.Score)
		}
		if ev.Episode > 0 && w.Episodes[ev.Episode-1].Class == class {
			for _, r := range []sense.Report{jr, or} {
				if r.Surprise-r.Threshold > best[ev.Episode].Surprise-best[ev.Episode].Threshold || best[ev.Episode].Entity == "" {
					best[ev.Episode] = r
				}
			}
		}
	}
	for i, ep := range w.Episodes {
		if ep.Class != class {
			continue
		}
		r := best[int32(i+1)]
		e := w.Entities[ep.Entity]
		t.Logf("ep %d %s rate %.2f dur %dm est %v: %s obs %d exp %v surprise %d thr %d", i, e.Name, e.rateAt(p, ep.Start), (ep.End-ep.Start)/minuteNs, r.Established, r.Metric, r.Observed, r.Expected, r.Surprise, r.Threshold)
	}
}
