package driver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Request asks a driver to carry out one effect.
type Request struct {
	ID       uint64 `json:"id"` // the syscall's ledger seq
	Op       string `json:"op"`
	Resource string `json:"resource"`
	Args     string `json:"args"`
}

// Response reports how it ended. Status is "ok" or "failed"; Code is the
// HTTP status or exit code; OutputDigest the SHA-256 of the output.
type Response struct {
	ID           uint64 `json:"id"`
	Status       string `json:"status"`
	Code         int64  `json:"code"`
	OutputDigest string `json:"output_digest"`
	Message      string `json:"message,omitempty"` // for the driver's log only; never ledgered
}

// Handler carries out one request.
type Handler func(ctx context.Context, req Request) Response

// MaxLineBytes bounds one protocol line.
const MaxLineBytes = 2 << 20

// Serve answers requests read from r on w until r ends.
func Serve(ctx context.Context, r io.Reader, w io.Writer, h Handler) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
	enc := json.NewEncoder(w)
	for sc.Scan() {
		var req Request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			if err := enc.Encode(Response{Status: "failed", Code: -2, Message: "malformed request: " + err.Error()}); err != nil {
				return err
			}
			continue
		}
		resp := h(ctx, req)
		resp.ID = req.ID
		if err := enc.Encode(resp); err != nil {
			return err
		}
	}
	return sc.Err()
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func failed(code int64, format string, args ...any) Response {
	return Response{Status: "failed", Code: code, Message: fmt.Sprintf(format, args...)}
}

// Webhook returns the webhook driver's handler: POST args to the resource
// URL if it starts with an allowed prefix.
func Webhook(allow []string, timeout time.Duration) Handler {
	hc := &http.Client{Timeout: timeout}
	return func(ctx context.Context, req Request) Response {
		if req.Op != "webhook.call" {
			return failed(-3, "webhook driver does not handle %s", req.Op)
		}
		ok := false
		for _, p := range allow {
			if p != "" && strings.HasPrefix(req.Resource, p) {
				ok = true
			}
		}
		if !ok {
			return failed(-4, "URL %s is not allow-listed", req.Resource)
		}
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, req.Resource, strings.NewReader(req.Args))
		if err != nil {
			return failed(-5, "%v", err)
		}
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("X-Dominus-Syscall-Id", strconv.FormatUint(req.ID, 10))
		resp, err := hc.Do(hr)
		if err != nil {
			return failed(-6, "%v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		out := Response{Status: "failed", Code: int64(resp.StatusCode), OutputDigest: digest(body)}
		if resp.StatusCode/100 == 2 {
			out.Status = "ok"
		}
		return out
	}
}

// Exec returns the exec driver's handler: run an allow-listed command with
// the JSON-array args.
func Exec(allow []string, timeout time.Duration) Handler {
	return func(ctx context.Context, req Request) Response {
		if req.Op != "exec.run" {
			return failed(-3, "exec driver does not handle %s", req.Op)
		}
		ok := false
		for _, c := range allow {
			if c != "" && c == req.Resource {
				ok = true
			}
		}
		if !ok {
			return failed(-4, "command %s is not allow-listed", req.Resource)
		}
		var argv []string
		if req.Args != "" {
			if err := json.Unmarshal([]byte(req.Args), &argv); err != nil {
				return failed(-2, "args must be a JSON array of strings: %v", err)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(cctx, req.Resource, argv...)
		cmd.Env = append(os.Environ(), "DOMINUS_SYSCALL_ID="+strconv.FormatUint(req.ID, 10))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return Response{Status: "ok", OutputDigest: digest(out.Bytes())}
		case errors.As(err, &ee):
			return Response{Status: "failed", Code: int64(ee.ExitCode()), OutputDigest: digest(out.Bytes())}
		default:
			return failed(-7, "%v", err)
		}
	}
}
