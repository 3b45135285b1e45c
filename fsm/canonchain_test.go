package fsm

import "testing"

// The ratified amendments verify as a chain from the genesis canon, and a
// tampered text, a broken link or a canon that is not the chain's end is
// caught (kernels refuse to start on it).
func TestCanonChainVerifies(t *testing.T) {
	k := newFedKeys(t)
	w := newSovereign(t, k, threeSovereigns, 2)
	texts := []string{"Article 1. v1.\n", "Article 1. v2.\n"}
	for _, text := range texts {
		id := w.must("propose", CmdFedAmendPropose, opToken("alice"), &FedAmendPropose{Text: text}).Result.ID
		w.must("alice", CmdFedAmendSign, nil, amendSign(k.ops["alice"], "alice", id, text))
		w.must("bob", CmdFedAmendSign, nil, amendSign(k.ops["bob"], "bob", id, text))
	}
	st := w.State()
	if err := st.VerifyCanonChain(); err != nil || st.Fed.Canon.Version != 2 {
		t.Fatalf("a chain of two ratified amendments: %v (version %d)", err, st.Fed.Canon.Version)
	}
	for name, tamper := range map[string]func(f *FedState) func(){
		"text": func(f *FedState) func() {
			old := f.Amendments[0].Text
			f.Amendments[0].Text = "Article 1. forged.\n"
			return func() { f.Amendments[0].Text = old }
		},
		"link": func(f *FedState) func() {
			old := f.Amendments[1].PrevHash
			f.Amendments[1].PrevHash = headHash("elsewhere")
			return func() { f.Amendments[1].PrevHash = old }
		},
		"canon in force": func(f *FedState) func() {
			old := f.Canon
			f.Canon.Hash = headHash("other canon")
			return func() { f.Canon = old }
		},
		"version": func(f *FedState) func() {
			old := f.Canon.Version
			f.Canon.Version = 3
			return func() { f.Canon.Version = old }
		},
	} { // test code: cases are independent, order does not matter
		undo := tamper(st.Fed)
		if err := st.VerifyCanonChain(); err == nil {
			t.Errorf("tampered %s verified", name)
		}
		undo()
	}
	if err := st.VerifyCanonChain(); err != nil {
		t.Fatalf("after undoing: %v", err)
	}
}
