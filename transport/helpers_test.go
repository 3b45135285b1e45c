package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dominus-kernel/dominus/internal/tlsutil"
)

// ioTimeout bounds every network wait in these tests.
const ioTimeout = 10 * time.Second

// Loopback addresses of the bus tests, one per node.
const (
	ipAcme1 = "127.0.70.1"
	ipGlob1 = "127.0.70.2"
	ipRogue = "127.0.70.3"
	ipRaw   = "127.0.70.4"
	ipInit1 = "127.0.70.5"
	ipAcme2 = "127.0.70.6"
)

// testLogger writes through t.Log until the test's cleanups have run.
func testLogger(t *testing.T) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) }) // registered first, so it runs last
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	t    *testing.T
	done atomic.Bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(string(p))
	}
	return len(p), nil
}

// testPKI is a federation CA made by tlsutil.CreateCA.
type testPKI struct {
	caCert, caKey string
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	c, k, err := tlsutil.CreateCA(t.TempDir(), 24*time.Hour)
	if err != nil {
		t.Fatalf("CreateCA: %v", err)
	}
	return testPKI{caCert: c, caKey: k}
}

// reloader issues a certificate for node at ip and loads it, trusting the
// CA certificates in trustFile (this CA's if empty).
func (p testPKI) reloader(t *testing.T, node, ip, trustFile string) *tlsutil.Reloader {
	t.Helper()
	cert, key, err := tlsutil.CreateCert(t.TempDir(), p.caCert, p.caKey, "acme", node, []net.IP{net.ParseIP(ip)}, nil, time.Hour)
	if err != nil {
		t.Fatalf("CreateCert(%s): %v", node, err)
	}
	if trustFile == "" {
		trustFile = p.caCert
	}
	rl, err := tlsutil.NewReloader(tlsutil.Files{CA: trustFile, Cert: cert, Key: key}, nil)
	if err != nil {
		t.Fatalf("NewReloader(%s): %v", node, err)
	}
	return rl
}

// bundle writes the CA certificates of several PKIs into one trust file.
func bundle(t *testing.T, pkis ...testPKI) string {
	t.Helper()
	var all []byte
	for _, p := range pkis {
		b, err := os.ReadFile(p.caCert)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	path := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(path, all, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startBus listens on ip with rl's TLS material. mod may adjust the
// configuration. The Server is closed at the end of the test.
func startBus(t *testing.T, rl *tlsutil.Reloader, addr string, h Handler, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		Handler:        h,
		ClientTLS:      rl.ClientConfig(""),
		PeerNode:       rl.PeerNode,
		Logger:         testLogger(t),
		StreamTimeout:  5 * time.Second,
		MaxIdleTimeout: 5 * time.Second,
	}
	cfg.KeepAlivePeriod = time.Second
	if mod != nil {
		mod(&cfg)
	}
	s, err := Listen(addr, rl.ServerConfig(true), cfg)
	if err != nil {
		t.Fatalf("Listen(%s): %v", addr, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close(%s): %v", addr, err)
		}
	})
	return s
}

// crash stops s the way a killed process does: the socket goes away
// without a CONNECTION_CLOSE to any peer.
func crash(s *Server) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	_ = s.tr.Close()
	_ = s.udp.Close()
	s.wg.Wait()
}

// kernelReceiver does what a receiving kernel will do with a frame: verify
// it (link MAC, TLS identity, destination, replay window), apply it, and
// answer with an ack sealed with the reverse link key. It records every
// error so tests can check the handler saw the typed error.
type kernelReceiver struct {
	kernel string
	keys   linkKeys

	mu      sync.Mutex
	windows map[string]*Window
	applied map[string][]uint64 // by origin, in order
	errs    []error
	calls   int
}

func newKernelReceiver(kernel string, keys linkKeys) *kernelReceiver {
	return &kernelReceiver{kernel: kernel, keys: keys, windows: map[string]*Window{}, applied: map[string][]uint64{}}
}

func (r *kernelReceiver) handle(ctx context.Context, peerNode string, b []byte) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	ack, err := r.receive(peerNode, b)
	if err != nil {
		r.errs = append(r.errs, err)
	}
	return ack, err
}

func (r *kernelReceiver) receive(peerNode string, b []byte) ([]byte, error) {
	f, err := Decode(b, r.keys.lookup)
	if err != nil {
		return nil, err
	}
	if f.OriginNode != peerNode {
		return nil, fmt.Errorf("%w: frame names node %s, certificate names %s", ErrPeerMismatch, f.OriginNode, peerNode)
	}
	if f.Destination != r.kernel {
		return nil, fmt.Errorf("%w: destination %s is not %s", ErrRefused, f.Destination, r.kernel)
	}
	w := r.windows[f.Origin]
	if w == nil {
		w = &Window{}
		r.windows[f.Origin] = w
	}
	if err := w.Check(f.Seq); err != nil {
		return nil, err
	}
	r.applied[f.Origin] = append(r.applied[f.Origin], f.Seq) // the ledger apply
	if err := w.Accept(f.Seq); err != nil {
		panic(err) // Check just passed
	}
	key, ok := r.keys.lookup(r.kernel, f.Origin)
	if !ok {
		return nil, fmt.Errorf("%w: no key %s->%s", ErrUnknownLink, r.kernel, f.Origin)
	}
	return EncodeAck(Ack{Version: FrameVersion, Origin: f.Origin, Responder: r.kernel, Seq: f.Seq,
		Status: AckApplied, EventDigest: DigestFrame(b)}, key)
}

func (r *kernelReceiver) snapshot() (calls int, errs []error, applied map[string][]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	applied = map[string][]uint64{}
	for k, v := range r.applied {
		applied[k] = append([]uint64(nil), v...)
	}
	return r.calls, append([]error(nil), r.errs...), applied
}

// event returns a valid frame from acme-1 to glob with seq.
func event(seq uint64) Frame {
	f := sampleFrame()
	f.Seq = seq
	f.Payload = []byte(fmt.Sprintf("event %d", seq))
	return f
}

// verifyAck decodes ack with the sender's keys and checks it answers event.
func verifyAck(t *testing.T, keys linkKeys, ack, event []byte, f Frame) {
	t.Helper()
	a, err := DecodeAck(ack, keys.lookup)
	if err != nil {
		t.Fatalf("DecodeAck: %v", err)
	}
	want := Ack{Version: FrameVersion, Origin: f.Origin, Responder: f.Destination, Seq: f.Seq, Status: AckApplied, EventDigest: DigestFrame(event)}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("ack %+v, want %+v", a, want)
	}
}

func sendCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	t.Cleanup(cancel)
	return ctx
}

// wantRemote checks err is a *RemoteError with reason and its sentinel.
func wantRemote(t *testing.T, err error, reason RejectReason, sentinel error) {
	t.Helper()
	var re *RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want a *RemoteError %s", err, err, reason)
	}
	if re.Reason != reason || !errors.Is(err, sentinel) {
		t.Fatalf("remote error %v, want reason %s wrapping %v", err, reason, sentinel)
	}
}
