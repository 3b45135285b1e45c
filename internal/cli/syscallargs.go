package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/dominus-kernel/dominus/api"
)

// argKind is how a --arg value is typed in the JSON object it joins.
type argKind int

const (
	argString argKind = iota
	argBool
	argUint
)

// casArgKinds are the keys of kv.cas --arg: the fields of the
// api.KVCASRequest object that --args takes.
var casArgKinds = map[string]argKind{
	"expect":         argString,
	"expect_absent":  argBool,
	"expect_version": argUint,
	"value":          argString,
}

// argsFromPairs builds a syscall's arguments from --arg KEY=VALUE pairs,
// as the --args they stand for: for kv.put the value of key value; for
// kv.cas the JSON object of its fields, each typed as the field is; for
// any other op a JSON object of string values. The object's keys are
// sorted and nothing is escaped beyond JSON's needs, so the same pairs
// always give the same bytes (and the same args digest).
func argsFromPairs(op string, pairs []string) (string, error) {
	kv, err := parsePairs(pairs)
	if err != nil {
		return "", err
	}
	switch op {
	case "kv.put":
		for k := range kv {
			if k != "value" {
				return "", usageError(fmt.Errorf("--arg %s: kv.put takes only --arg value=V", k))
			}
		}
		return kv["value"], nil
	case "kv.cas":
		return casArgs(kv)
	}
	obj := make(map[string]any, len(kv))
	for k, v := range kv {
		obj[k] = v
	}
	return argsJSON(obj)
}

// parsePairs splits KEY=VALUE pairs (the value may hold '='), refusing a
// pair without '=', an empty key and a key given twice.
func parsePairs(pairs []string) (map[string]string, error) {
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		switch {
		case !ok:
			return nil, usageError(fmt.Errorf("--arg %q: want KEY=VALUE", p))
		case k == "":
			return nil, usageError(fmt.Errorf("--arg %q: the key is empty", p))
		}
		if _, dup := out[k]; dup {
			return nil, usageError(fmt.Errorf("--arg %s is given twice", k))
		}
		out[k] = v
	}
	return out, nil
}

// casArgs builds the kv.cas JSON object from its --arg pairs.
func casArgs(kv map[string]string) (string, error) {
	obj := make(map[string]any, len(kv))
	for k, v := range kv {
		kind, ok := casArgKinds[k]
		if !ok {
			return "", usageError(fmt.Errorf("--arg %s: kv.cas takes only %s", k, strings.Join(sortedKeys(casArgKinds), ", ")))
		}
		switch kind {
		case argBool:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return "", usageError(fmt.Errorf("--arg %s=%s: want true or false", k, v))
			}
			obj[k] = b
		case argUint:
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return "", usageError(fmt.Errorf("--arg %s=%s: want a non-negative integer", k, v))
			}
			obj[k] = n
		default:
			obj[k] = v
		}
	}
	return argsJSON(obj)
}

// argsJSON encodes obj compactly, keys sorted, without HTML escaping.
func argsJSON(obj map[string]any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return "", err
	}
	s := strings.TrimSuffix(buf.String(), "\n")
	if len(s) > maxSyscallArgsBytes {
		return "", fail(api.ExitError, api.CodeTooLarge, errors.New("the --arg pairs exceed the arguments' size limit"))
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
