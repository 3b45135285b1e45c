package httpedge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/fsm"
)

// Coder is an error that carries its API code.
type Coder interface {
	error
	APICode() string
}

// Error is an error with an API code.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// APICode implements Coder.
func (e *Error) APICode() string { return e.Code }

// Errorf returns an error with code and a formatted message.
func Errorf(code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// BadRequest returns a bad_request error.
func BadRequest(format string, args ...any) error {
	return &Error{Code: api.CodeBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf is err's API code: the first Coder in its chain; a request body
// over its limit is too_large; a deadline is timeout; an outcome that is
// unknown (leadership lost, Raft shut down, a connection cut) is
// unavailable; anything else internal.
func CodeOf(err error) string {
	var c Coder
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &c):
		return c.APICode()
	case errors.As(err, &mbe):
		return api.CodeTooLarge
	case errors.Is(err, context.DeadlineExceeded):
		return api.CodeTimeout
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		// The outcome is unknown: the client retries with the same
		// request id and the ledger deduplicates.
		return api.CodeUnavailable
	case errors.As(err, &ne):
		return api.CodeUnavailable
	}
	return api.CodeInternal
}

// Status is the HTTP status of an API error code.
func Status(code string) int {
	switch code {
	case api.CodeBadRequest, api.CodePolicyInvalid:
		return http.StatusBadRequest
	case api.CodeUnauthorized:
		return http.StatusUnauthorized
	case api.CodeForbidden, api.CodeDenied:
		return http.StatusForbidden
	case api.CodeNotFound:
		return http.StatusNotFound
	case api.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case api.CodeAlreadyInit, api.CodeVerifyFailed, api.CodeProtocolUnsupported:
		return http.StatusConflict
	case api.CodeNotInitialized:
		return http.StatusPreconditionFailed
	case api.CodeRateLimited:
		return http.StatusTooManyRequests
	case api.CodeNoLeader, api.CodeUnavailable, api.CodeClockSkew, api.CodeTimeout, api.CodeStale:
		return http.StatusServiceUnavailable
	case api.CodeDiskFull:
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteErr answers err as an API error body with its code's status.
func WriteErr(w http.ResponseWriter, err error) {
	code := CodeOf(err)
	WriteJSON(w, Status(code), api.ErrorBody{Error: api.Error{Code: code, Message: err.Error()}})
}

// Answer writes err, or v with 200: the end of most handlers.
func Answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		WriteErr(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

// DecodeBody decodes the JSON request body into v; unknown fields are
// refused. A body over the route's limit stays a too_large error.
func DecodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return BadRequest("request body: %v", err)
	}
	return nil
}

// Outcome is a ledger result's common answer fields.
func Outcome(res fsm.Result) api.Outcome {
	o := api.Outcome{Seq: res.Seq, Decision: res.Decision.JSON(), Reason: res.Reason.String(), Duplicate: res.Duplicate, Retried: res.Retried}
	if res.Time > 0 {
		o.Time = time.Unix(0, res.Time).UTC()
	}
	return o
}
