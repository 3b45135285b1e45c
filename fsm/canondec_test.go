package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"
)

// newDecodable returns a fresh zero value of each type with a strict
// decoder, by name.
var decodables = map[string]func() canonicalDecoder{
	"envelope": func() canonicalDecoder { return &Envelope{} },
	"kv put":   func() canonicalDecoder { return &KVPut{} },
	"kv key":   func() canonicalDecoder { return &KVKey{} },
	"syscall":  func() canonicalDecoder { return &Syscall{} },
	"event":    func() canonicalDecoder { return &Event{} },
	"archived": func() canonicalDecoder { return &ArchivedEntry{} },
}

func randomEvent(g valueGen) *Event {
	return &Event{Seq: g.uint(64), Time: g.int(), Epoch: g.uint(64), Index: g.uint(64), Type: CommandType(g.uint(16)),
		Actor: g.str(), RequestID: g.str(), Subject: g.str(), PayloadHash: g.bin(), Decision: Decision(g.uint(8)),
		Reason: Reason(g.uint(16)), Prev: g.bin(), Detail: g.bin()}
}

// checkStrictDecode holds the strict decoder of type name to its promise
// on input b: when it accepts, the codec decodes b to the same value, the
// canonical check of Decode passes, and re-encoding gives b back.
func checkStrictDecode(t *testing.T, name string, b []byte) (accepted bool) {
	t.Helper()
	fast := decodables[name]()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: strict decoder panicked on %x: %v", name, b, r)
		}
	}()
	if !fast.decodeCanonical(b) {
		if !reflect.DeepEqual(fast, decodables[name]()) {
			t.Fatalf("%s: refused %x but changed the value to %+v", name, b, fast)
		}
		return false
	}
	slow := decodables[name]()
	if err := decodeBytes(b, slow); err != nil {
		t.Fatalf("%s: strict decoder accepted %x, the codec refuses it: %v", name, b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%s: %x decodes to %+v, the codec's value is %+v", name, b, fast, slow)
	}
	if enc := encodeReflect(fast); !bytes.Equal(enc, b) {
		t.Fatalf("%s: accepted %x, which is not canonical (re-encodes to %x)", name, b, enc)
	}
	return true
}

func randomDecodable(g valueGen, name string) any {
	switch name {
	case "envelope":
		return &Envelope{Type: CommandType(g.uint(16)), RequestID: g.str(), Auth: g.bin(), Time: g.int(), Payload: g.bin()}
	case "kv put":
		return &KVPut{Key: g.str(), Value: g.bin()}
	case "kv key":
		return &KVKey{Key: g.str()}
	case "event":
		return randomEvent(g)
	case "archived":
		a := &ArchivedEntry{Entry: g.bin(), Head: g.bin()}
		if g.rng.Intn(4) > 0 {
			a.Event = randomEvent(g)
		}
		return a
	case "syscall":
		return &Syscall{Op: g.str(), Resource: g.str(), Args: g.bin(), ApprovalID: g.str(), RemoteTokenHash: g.bin()}
	}
	panic("no generator for " + name)
}

// Every canonical encoding is accepted and decodes to the codec's value;
// mutated encodings (flipped, replaced, dropped, inserted bytes, cut
// tails) are either refused or, when still canonical, decode as the codec
// decodes them.
func TestStrictDecodersAgreeWithTheCodec(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	g := valueGen{rng}
	accepted, refused := 0, 0
	for _, name := range []string{"envelope", "kv put", "kv key", "syscall", "event", "archived"} {
		for i := 0; i < 1500; i++ {
			b := Encode(randomDecodable(g, name))
			if !checkStrictDecode(t, name, b) {
				t.Fatalf("%s: refused its own canonical encoding %x", name, b)
			}
			for m := 0; m < 4; m++ {
				if checkStrictDecode(t, name, mutate(rng, b)) {
					accepted++
				} else {
					refused++
				}
			}
		}
	}
	t.Logf("mutated inputs: %d accepted (still canonical), %d refused", accepted, refused)
	if refused == 0 {
		t.Fatal("no mutated input was refused: the mutations test nothing")
	}
}

func mutate(rng *rand.Rand, b []byte) []byte {
	out := append([]byte(nil), b...)
	if len(out) == 0 {
		return []byte{byte(rng.Intn(256))}
	}
	i := rng.Intn(len(out))
	switch rng.Intn(5) {
	case 0:
		out[i] ^= 1 << rng.Intn(8)
	case 1:
		out[i] = byte(rng.Intn(256))
	case 2:
		out = append(out[:i], out[i+1:]...)
	case 3:
		out = append(out[:i], append([]byte{byte(rng.Intn(256))}, out[i:]...)...)
	default:
		out = out[:i]
	}
	return out
}

// Non-canonical forms the strict decoders refuse still get the codec's
// verdict through Decode: ErrNonCanonical for a value in a wider form
// than needed, a decode error for garbage.
func TestDecodeFallsBackForNonCanonicalForms(t *testing.T) {
	canon := Encode(&KVKey{Key: "k"}) // 81 a3 6b6579 a1 6b
	wide := append([]byte{0x81, 0xa3, 'k', 'e', 'y', 0xd9, 0x01}, 'k')
	if err := Decode(canon, &KVKey{}); err != nil {
		t.Fatalf("canonical: %v", err)
	}
	var k KVKey
	if err := Decode(wide, &k); !errors.Is(err, ErrNonCanonical) {
		t.Fatalf("str8 for a 1-byte key: %v, want ErrNonCanonical", err)
	}
	trailing := append(append([]byte(nil), canon...), 0xc0)
	if err := Decode(trailing, &KVKey{}); err == nil {
		t.Fatal("trailing byte: accepted")
	}
	env := Encode(&Envelope{Type: CmdKVPut, Time: 5})
	wideInt := bytes.Replace(env, []byte{0xa2, 't', 's', 0x05}, []byte{0xa2, 't', 's', 0xd0, 0x05}, 1)
	if bytes.Equal(wideInt, env) {
		t.Fatal("fixture: ts not found")
	}
	if err := Decode(wideInt, &Envelope{}); !errors.Is(err, ErrNonCanonical) {
		t.Fatalf("int8 for ts 5: %v, want ErrNonCanonical", err)
	}
	if err := Decode([]byte{0x85}, &Envelope{}); err == nil {
		t.Fatal("truncated envelope: accepted")
	}
}

func FuzzStrictDecoders(f *testing.F) {
	f.Add(uint8(0), Encode(&Envelope{Type: CmdSyscall, RequestID: "r", Auth: make([]byte, 32), Time: 1_700_000_000_000_000_000, Payload: []byte{1}}))
	f.Add(uint8(1), Encode(&KVPut{Key: "orders/1", Value: make([]byte, 256)}))
	f.Add(uint8(2), Encode(&KVKey{Key: "k"}))
	f.Add(uint8(3), Encode(&Syscall{Op: "kv.put", Resource: "b:orders/1", Args: []byte("v"), RemoteTokenHash: make([]byte, 32)}))
	f.Add(uint8(3), Encode(&Syscall{Op: "kv.get", Resource: "orders/1"}))
	f.Add(uint8(4), Encode(&Event{Seq: 7, Time: 1_700_000_000_000_000_000, Type: CmdSyscall, Actor: "agent", PayloadHash: make([]byte, 32), Prev: make([]byte, 32), Detail: []byte{0x80}}))
	f.Add(uint8(5), Encode(&ArchivedEntry{Entry: []byte{0x80}, Event: &Event{Seq: 1}, Head: make([]byte, 32)}))
	f.Add(uint8(5), Encode(&ArchivedEntry{Entry: []byte{0x80}}))
	names := []string{"envelope", "kv put", "kv key", "syscall", "event", "archived"}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		name := names[int(which)%len(names)]
		t.Run(fmt.Sprint(name), func(t *testing.T) { checkStrictDecode(t, name, b) })
	})
}
