package kernel

import (
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/dominus-kernel/dominus/api"
	"github.com/dominus-kernel/dominus/cortex"
	"github.com/dominus-kernel/dominus/httpedge"
)

// cortexKeyringFile holds this node's gossip keyring after an operator
// rotated it (hex keys, one per line, the primary first); it takes
// precedence over the derived key so a pool restart keeps the rotation.
const cortexKeyringFile = "gossip.keyring"

// keyring returns the persisted keyring, or nil when there is none.
func (c *cortexNode) keyring() [][]byte {
	b, err := os.ReadFile(filepath.Join(c.n.cfg.DataDir, cortexKeyringFile))
	if err != nil {
		return nil
	}
	var keys [][]byte
	for _, line := range strings.Fields(string(b)) {
		k, err := hex.DecodeString(line)
		if err != nil || len(k) != cortex.KeyBytes {
			c.warn("cortex: ignoring an unreadable gossip keyring file", "file", cortexKeyringFile)
			return nil
		}
		keys = append(keys, k)
	}
	return keys
}

func (c *cortexNode) saveKeyring(keys [][]byte) error {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(hex.EncodeToString(k) + "\n")
	}
	return writeSecretFile(filepath.Join(c.n.cfg.DataDir, cortexKeyringFile), []byte(b.String()))
}

// handleCortexKeyring rotates this node's gossip keyring: install a key,
// use it (encrypt with it), remove the old one — on every member, in that
// order (package cortex documents the procedure). Gossip keys are per
// node and never enter a ledger.
func (n *Node) handleCortexKeyring(w http.ResponseWriter, r *http.Request, caller *httpedge.Caller) {
	var req api.CortexKeyringRequest
	if err := httpedge.DecodeBody(r, &req); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	c := n.cortexOf()
	var p *cortex.Pool
	if c != nil {
		p = c.current()
	}
	if p == nil {
		httpedge.WriteErr(w, &httpedge.Error{Code: api.CodeUnavailable, Msg: "this node has no running gossip pool (--gossip)"})
		return
	}
	key, err := hex.DecodeString(req.Key)
	if err != nil || len(key) != cortex.KeyBytes {
		httpedge.WriteErr(w, httpedge.BadRequest("key must be %d bytes of hex", cortex.KeyBytes))
		return
	}
	switch req.Action {
	case "install":
		err = p.InstallKey(key)
	case "use":
		err = p.UseKey(key)
	case "remove":
		err = p.RemoveKey(key)
	default:
		err = errors.New("action must be install, use or remove")
	}
	if err != nil {
		httpedge.WriteErr(w, httpedge.BadRequest("%v", err))
		return
	}
	keys := p.Keys()
	if err := c.saveKeyring(keys); err != nil {
		httpedge.WriteErr(w, err)
		return
	}
	out := api.CortexKeyring{Node: n.cfg.Name}
	for _, k := range keys {
		sum := hex.EncodeToString(k)
		out.Keys = append(out.Keys, sum[:8]) // fingerprints only
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
}
