package checker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// LeaderMessage is the log message an agent writes when it becomes
// leader, with the attributes node and term.
const LeaderMessage = "became leader"

// LeaderPerTerm checks that no two nodes claimed leadership of one term.
type LeaderPerTerm struct{}

// Name implements Checker.
func (LeaderPerTerm) Name() string { return "leader-per-term" }

// Check implements Checker.
func (c LeaderPerTerm) Check(ctx context.Context, in *Input) Verdict {
	byTerm := map[uint64]map[string]string{} // term -> node -> first source
	for _, l := range in.Leaders {
		if byTerm[l.Term] == nil {
			byTerm[l.Term] = map[string]string{}
		}
		if _, seen := byTerm[l.Term][l.Node]; !seen {
			byTerm[l.Term][l.Node] = l.Source
		}
	}
	terms := make([]uint64, 0, len(byTerm))
	for t := range byTerm {
		terms = append(terms, t)
	}
	sort.Slice(terms, func(i, j int) bool { return terms[i] < terms[j] })
	var v violations
	if len(in.Leaders) == 0 {
		v.add("no node recorded becoming leader (no %q lines in the agent logs)", LeaderMessage)
	}
	for _, t := range terms {
		if nodes := byTerm[t]; len(nodes) > 1 {
			var desc []string
			for _, n := range sortedKeys(nodes) {
				desc = append(desc, n+" ("+nodes[n]+")")
			}
			v.add("term %d has %d leaders: %s", t, len(nodes), strings.Join(desc, ", "))
		}
	}
	out := v.verdict(c.Name(), fmt.Sprintf("%d leadership claims over %d terms, one leader each", len(in.Leaders), len(terms)))
	out.Stats = map[string]int{"claims": len(in.Leaders), "terms": len(terms)}
	return out
}

// ParseLeaderLog returns the leadership claims in an agent log: slog text
// lines with msg="became leader" and the attributes node and term.
// source names the file in each claim's Source.
func ParseLeaderLog(r io.Reader, source string) ([]LeaderClaim, error) {
	var out []LeaderClaim
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if !strings.Contains(text, LeaderMessage) {
			continue
		}
		kv := ParseLogfmt(text)
		if kv["msg"] != LeaderMessage {
			continue
		}
		term, err := strconv.ParseUint(kv["term"], 10, 64)
		if err != nil || kv["node"] == "" {
			return out, fmt.Errorf("%s:%d: leadership line without node and term: %s", source, line, text)
		}
		out = append(out, LeaderClaim{Node: kv["node"], Term: term, Source: fmt.Sprintf("%s:%d", source, line)})
	}
	return out, sc.Err()
}

// ReadLeaderLogs parses every file in paths.
func ReadLeaderLogs(paths []string) ([]LeaderClaim, error) {
	var all []LeaderClaim
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return all, err
		}
		cl, err := ParseLeaderLog(f, filepath.Base(p))
		f.Close()
		all = append(all, cl...)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// ParseLogfmt splits a key=value line (values may be double-quoted with
// backslash escapes, as slog's text handler writes them).
func ParseLogfmt(s string) map[string]string {
	out := map[string]string{}
	i := 0
	for i < len(s) {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			break
		}
		key := s[i : i+eq]
		if strings.ContainsRune(key, ' ') { // not a key: skip a word
			sp := strings.IndexByte(s[i:], ' ')
			i += sp + 1
			continue
		}
		i += eq + 1
		if i < len(s) && s[i] == '"' {
			j := i + 1
			var b strings.Builder
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
				j++
			}
			out[key] = b.String()
			i = j + 1
			continue
		}
		j := strings.IndexByte(s[i:], ' ')
		if j < 0 {
			out[key] = s[i:]
			break
		}
		out[key] = s[i : i+j]
		i += j
	}
	return out
}

// ProcessExits checks that no agent exited unless the nemesis or the
// harness made it.
type ProcessExits struct{}

// Name implements Checker.
func (ProcessExits) Name() string { return "process-exits" }

// Check implements Checker.
func (c ProcessExits) Check(ctx context.Context, in *Input) Verdict {
	var v violations
	expected := 0
	for _, e := range in.Exits {
		if e.Expected {
			expected++
			continue
		}
		v.add("%s exited on its own at %s: %s", e.Node, ms(e.Time), e.Status)
	}
	return v.verdict(c.Name(), fmt.Sprintf("%d exits, all caused by the nemesis or the harness", expected))
}
