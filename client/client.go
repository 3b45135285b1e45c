package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dominus-kernel/dominus/api"
)

// Config configures a Client.
type Config struct {
	Addr     string        // base URL, e.g. https://127.0.0.11:8101
	Token    string        // bearer token
	CACert   string        // PEM file to verify an https server; empty uses the system pool
	Timeout  time.Duration // per attempt; default 10s
	RetryFor time.Duration // total time to keep retrying retryable failures; default 15s
	HTTP     *http.Client  // optional; overrides CACert/Timeout
	// OnRetry, when set, is told before each wait between attempts: the
	// failure that will be retried and the time spent since the first
	// attempt (the CLI prints "waiting for a leader (3 s)...").
	OnRetry func(err error, waited time.Duration)
}

// Client talks to one kernel node. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client
}

// Error is an API error response.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// New returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("client: no address (set --addr or DOMINUS_HTTP_ADDR)")
	}
	if !strings.Contains(cfg.Addr, "://") {
		// A CA certificate means the node serves https.
		if cfg.CACert != "" {
			cfg.Addr = "https://" + cfg.Addr
		} else {
			cfg.Addr = "http://" + cfg.Addr
		}
	}
	u, err := url.Parse(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("client: address %q: %w", cfg.Addr, err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.RetryFor == 0 {
		cfg.RetryFor = 15 * time.Second
	}
	hc := cfg.HTTP
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 256
		if cfg.CACert != "" {
			pem, err := os.ReadFile(cfg.CACert)
			if err != nil {
				return nil, fmt.Errorf("client: CA certificate: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("client: %s holds no PEM certificate", cfg.CACert)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		hc = &http.Client{Transport: tr, Timeout: cfg.Timeout}
	}
	return &Client{cfg: cfg, base: u, http: hc}, nil
}

// NewRequestID returns a fresh random request id.
func NewRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

type callOpts struct {
	requestID string
	raw       io.Writer   // stream the body here instead of decoding JSON
	upload    io.Reader   // send this as the request body (one attempt: a stream is not replayed)
	uploadLen int64       // its length, -1 unknown
	header    http.Header // further request headers
	asOf      string      // read at this seq or RFC 3339 ledger time
	stream    bool        // a long-lived response: no per-attempt timeout
}

// Option adjusts one call.
type Option func(*callOpts)

// WithAsOf reads at an earlier point of the ledger: a seq or an RFC 3339
// ledger time (kv get, capabilities, policies, trust, baselines,
// posture). "" reads now.
func WithAsOf(point string) Option { return func(o *callOpts) { o.asOf = point } }

// WithRequestID sets the request id (for retries across processes).
func WithRequestID(id string) Option { return func(o *callOpts) { o.requestID = id } }

// retryable: only failures that waiting can fix. A node without a leader,
// unavailable, or not answering (refused, reset, timeout) may answer
// later: writes carry a request id, so a retry is deduplicated by the
// ledger. Certificate and protocol mismatches never fix themselves.
func retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Code == api.CodeNoLeader || e.Code == api.CodeUnavailable || e.Status == http.StatusServiceUnavailable
	}
	if errors.Is(err, context.Canceled) || tlsMismatch(err) {
		return false
	}
	return true
}

// tlsMismatch: the TLS handshake failed on the certificate, or one side
// speaks TLS and the other does not.
func tlsMismatch(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
		header   tls.RecordHeaderError
	)
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) ||
		errors.As(err, &verify) || errors.As(err, &header) ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") ||
		strings.Contains(err.Error(), "tls: ")
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any, opts ...Option) error {
	o := callOpts{}
	for _, f := range opts {
		f(&o)
	}
	if o.requestID == "" && method != http.MethodGet {
		o.requestID = NewRequestID()
	}
	if o.asOf != "" {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("as_of", o.asOf)
		query = q
	}
	var body []byte
	switch v := in.(type) {
	case nil:
	case []byte:
		body = v
	default:
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	deadline := time.Now().Add(c.cfg.RetryFor)
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, path, query, body, out, o)
		if err == nil || !retryable(err) || time.Now().Add(backoff).After(deadline) || o.raw != nil || o.upload != nil {
			return err
		}
		if c.cfg.OnRetry != nil {
			c.cfg.OnRetry(err, time.Since(deadline.Add(-c.cfg.RetryFor)))
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		if backoff < time.Second {
			backoff *= 2
		}
	}
}

func (c *Client) once(ctx context.Context, method, path string, query url.Values, body []byte, out any, o callOpts) error {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	if o.upload != nil {
		rd = o.upload
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if o.upload != nil {
		req.ContentLength = o.uploadLen
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	if o.requestID != "" {
		req.Header.Set(api.HeaderRequestID, o.requestID)
	}
	for k, v := range o.header {
		req.Header[k] = v
	}
	if body != nil && o.upload == nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.http
	if o.stream {
		nt := *c.http
		nt.Timeout = 0 // the caller's context ends the stream
		hc = &nt
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var eb api.ErrorBody
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			msg := strings.TrimSpace(string(data))
			if strings.Contains(msg, "Client sent an HTTP request to an HTTPS server") {
				return &Error{Status: resp.StatusCode, Code: api.CodeBadRequest,
					Message: "the node serves https: use an https:// address (--addr https://HOST:PORT) and its CA certificate (--ca-cert)"}
			}
			return &Error{Status: resp.StatusCode, Code: api.CodeInternal, Message: msg}
		}
		return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if o.raw != nil {
		_, err := io.Copy(o.raw, resp.Body)
		return err
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// keyPath joins a key to its route unescaped: url.URL escapes the path
// when the request is written, and the server's {key...} route takes
// slashes as part of the key.
func keyPath(prefix, key string) string { return prefix + key }

// Status returns the node's status (no token needed).
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var s api.Status
	return &s, c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &s)
}

// Health returns nil when the node process answers.
func (c *Client) Health(ctx context.Context) error {
	return c.once(ctx, http.MethodGet, "/v1/health", nil, nil, nil, callOpts{})
}

// Ready returns nil when the node has a leader and serves.
func (c *Client) Ready(ctx context.Context) error {
	return c.once(ctx, http.MethodGet, "/v1/ready", nil, nil, nil, callOpts{})
}

// Init seals genesis and returns the root token (once per kernel).
func (c *Client) Init(ctx context.Context) (*api.InitResponse, error) {
	var r api.InitResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/operator/init", nil, struct{}{}, &r)
}

// KVPut writes a value.
func (c *Client) KVPut(ctx context.Context, key, value string, opts ...Option) (*api.KVResponse, error) {
	var r api.KVResponse
	return &r, c.do(ctx, http.MethodPut, keyPath("/v1/kv/", key), nil, api.KVPutRequest{Value: value}, &r, opts...)
}

// KVGet reads a value through the ledger (a gated, recorded, linearizable read).
func (c *Client) KVGet(ctx context.Context, key string, opts ...Option) (*api.KVResponse, error) {
	var r api.KVResponse
	// Reads are ledgered commands: POST so a request id rides along.
	return &r, c.do(ctx, http.MethodPost, keyPath("/v1/kv-get/", key), nil, struct{}{}, &r, opts...)
}

// KVDelete deletes a key.
func (c *Client) KVDelete(ctx context.Context, key string, opts ...Option) (*api.KVResponse, error) {
	var r api.KVResponse
	return &r, c.do(ctx, http.MethodDelete, keyPath("/v1/kv/", key), nil, nil, &r, opts...)
}

// KVCAS compares and swaps.
func (c *Client) KVCAS(ctx context.Context, key string, req api.KVCASRequest, opts ...Option) (*api.KVResponse, error) {
	var r api.KVResponse
	return &r, c.do(ctx, http.MethodPost, keyPath("/v1/cas/", key), nil, req, &r, opts...)
}

// LedgerTail returns the last n events. With consistent, the node first
// confirms it has applied everything the leader had committed.
func (c *Client) LedgerTail(ctx context.Context, n int, consistent bool) ([]api.Event, error) {
	q := url.Values{"n": {strconv.Itoa(n)}}
	if consistent {
		q.Set("consistent", "1")
	}
	var evs []api.Event
	return evs, c.do(ctx, http.MethodGet, "/v1/ledger/tail", q, nil, &evs)
}

// LedgerShow returns one event.
func (c *Client) LedgerShow(ctx context.Context, seq uint64) (*api.Event, error) {
	var ev api.Event
	return &ev, c.do(ctx, http.MethodGet, "/v1/ledger/event/"+strconv.FormatUint(seq, 10), nil, nil, &ev)
}

// LedgerVerify asks the node to verify its archive from genesis.
func (c *Client) LedgerVerify(ctx context.Context) (*api.VerifyResponse, error) {
	var r api.VerifyResponse
	return &r, c.do(ctx, http.MethodGet, "/v1/ledger/verify", nil, nil, &r)
}

// LedgerExport streams the archive from seq into w.
func (c *Client) LedgerExport(ctx context.Context, from uint64, w io.Writer) error {
	q := url.Values{"from": {strconv.FormatUint(from, 10)}}
	return c.do(ctx, http.MethodGet, "/v1/ledger/export", q, nil, nil, func(o *callOpts) { o.raw = w })
}

// SnapshotSave streams a snapshot of the current state into w; the node
// records its head as a checkpoint so it can later be restored.
func (c *Client) SnapshotSave(ctx context.Context, w io.Writer) error {
	return c.do(ctx, http.MethodPost, "/v1/snapshot/save", nil, struct{}{}, nil, func(o *callOpts) { o.raw = w })
}

// SnapshotRestore restores a snapshot into the live cluster as a new epoch.
func (c *Client) SnapshotRestore(ctx context.Context, snapshot []byte) (*api.SnapshotRestoreResponse, error) {
	return c.SnapshotRestoreFrom(ctx, bytes.NewReader(snapshot), int64(len(snapshot)))
}

// SnapshotRestoreFrom restores the snapshot of size bytes read from rd,
// streamed to the node (one attempt: the stream is not replayed). A node
// whose restore limit the snapshot exceeds answers too_large (HTTP 413).
func (c *Client) SnapshotRestoreFrom(ctx context.Context, rd io.Reader, size int64) (*api.SnapshotRestoreResponse, error) {
	var r api.SnapshotRestoreResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/snapshot/restore", nil, nil, &r, func(o *callOpts) { o.upload, o.uploadLen = rd, size })
}

// RaftPeers lists the Raft configuration.
func (c *Client) RaftPeers(ctx context.Context) ([]api.Peer, error) {
	var ps []api.Peer
	return ps, c.do(ctx, http.MethodGet, "/v1/operator/raft/peers", nil, nil, &ps)
}

// RaftSnapshot makes the node it is sent to take a Raft snapshot now and
// compact its log.
func (c *Client) RaftSnapshot(ctx context.Context) (api.RaftSnapshotResponse, error) {
	var out api.RaftSnapshotResponse
	err := c.do(ctx, http.MethodPost, "/v1/operator/raft/snapshot", nil, struct{}{}, &out)
	return out, err
}

// RemovePeer removes a server from the Raft configuration.
// AddPeer admits a node of this kernel by name and --bind address
// (operator.manage; ledgered) and adds it to the Raft configuration.
func (c *Client) AddPeer(ctx context.Context, req api.AddPeerRequest, opts ...Option) (*api.AddPeerResponse, error) {
	var r api.AddPeerResponse
	return &r, c.do(ctx, http.MethodPost, "/v1/operator/raft/add-peer", nil, req, &r, opts...)
}

func (c *Client) RemovePeer(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/operator/raft/remove-peer", nil, api.RemovePeerRequest{ID: id}, nil)
}

// TransferLeadership asks the leader to hand leadership to id (or any).
func (c *Client) TransferLeadership(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/operator/raft/transfer-leadership", nil, api.TransferLeadershipRequest{ID: id}, nil)
}

// Leave removes the node the client talks to from its cluster.
func (c *Client) Leave(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/operator/raft/leave", nil, struct{}{}, nil)
}
