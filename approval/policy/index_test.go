package policy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// Pieces the random policies and calls are made of. Tools, users and groups
// share a small alphabet so that literals, prefixes and globs collide often;
// the groups include case and Unicode folding pairs (Kelvin sign, long s).
var (
	idxTools  = []string{"a", "ab", "abc", "b", "b_c", "a*", "ab*", "*b", "a?", "?", "*", "ab*c", "*b*", "", "ä", "ä*"}
	idxUsers  = []string{"alice@x.io", "ALICE@x.io", "alice*", "*@x.io", "bob@x.io", "b?b@x.io", "*"}
	idxGroups = []string{"eng", "ENG", "Eng", "ops", "k", "K", "\u212a", "s", "\u017f", "S", "ä", "Ä", "\xff"}
	idxServer = []string{"s1", "s2", "s3"}
	idxMethod = []string{MethodToolsCall, MethodResourcesRead, MethodPromptsGet, "x/custom"}
)

func pick(r *rand.Rand, from []string, max int) []string {
	n := r.IntN(max + 1)
	out := make([]string, 0, n)
	for range n {
		out = append(out, from[r.IntN(len(from))])
	}
	return out
}

// randomPolicy builds a policy of up to n rules over every matcher the
// index looks at, with some conditional rules mixed in.
func randomPolicy(t *testing.T, r *rand.Rand, n int) *Policy {
	t.Helper()
	rules := make([]RuleConfig, 0, n)
	for i := range 1 + r.IntN(n) {
		rc := RuleConfig{Name: fmt.Sprintf("r%d", i), Action: []string{"allow", "deny", "approve"}[r.IntN(3)]}
		rc.Servers = pick(r, idxServer, 2)
		for _, tl := range pick(r, idxTools, 3) {
			if tl != "" {
				rc.Tools = append(rc.Tools, tl)
			}
		}
		rc.Users = pick(r, idxUsers, 2)
		rc.Groups = pick(r, idxGroups, 2)
		if r.IntN(4) == 0 {
			rc.GroupsNot = pick(r, idxGroups, 1)
		}
		switch r.IntN(6) {
		case 0:
			rc.Methods = pick(r, []string{MethodToolsCall, MethodResourcesRead, "x/*", "*"}, 2)
		case 1:
			rc.When = `"eng" in groups`
		case 2:
			rc.ArgsContain = []string{"drop"}
		}
		if rc.Action == "approve" {
			rc.Approval = &ApprovalConfig{Approvers: []string{"rev"}}
		}
		rules = append(rules, rc)
	}
	p, err := Compile(Config{Default: []string{"allow", "deny"}[r.IntN(2)], Rules: rules}, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func randomCall(r *rand.Rand) Input {
	tool := strings.Join(pick(r, []string{"a", "b", "c", "_", "ä"}, 4), "")
	in := Input{
		User:   idxUsers[r.IntN(len(idxUsers))],
		Groups: pick(r, idxGroups, 3),
		Server: append(idxServer, "other")[r.IntN(len(idxServer)+1)],
		Method: idxMethod[r.IntN(len(idxMethod))],
		Tool:   tool,
	}
	if r.IntN(2) == 0 {
		in.Args = []byte(`{"q":"drop it"}`)
	}
	return in
}

// linearDecide is the reference: every rule, in order, with the server
// checked by the rule itself rather than by any index.
func linearDecide(p *Policy, in Input) (*rule, string) {
	st := evalState{in: in, methodBit: methodBit(in.Method)}
	for i := range p.rules {
		if v, _, errMsg := p.rules[i].eval(&st, false); v != noMatch {
			return &p.rules[i], errMsg
		}
	}
	return nil, ""
}

// TestIndexMatchesLinearScan checks on random policies and calls that the
// indexed first match is the linear scan's, and that Decide agrees with
// Explain (which scans every rule).
func TestIndexMatchesLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 3))
	matched := 0
	for range 300 {
		p := randomPolicy(t, r, 40)
		for range 100 {
			in := randomCall(r)
			st := evalState{in: in, methodBit: methodBit(in.Method), serverChecked: true}
			got, gotErr := p.firstMatch(&st)
			want, wantErr := linearDecide(p, in)
			if want != nil {
				matched++
			}
			if got != want || gotErr != wantErr {
				t.Fatalf("input %+v: indexed match %v, linear scan %v\npolicy: %+v", in, ruleName(got), ruleName(want), p.cfg.Rules)
			}
			if d, ex := p.Decide(in), p.Explain(in); d != ex.Decision {
				t.Fatalf("input %+v: Decide %+v, Explain %+v", in, d, ex.Decision)
			}
		}
	}
	if matched < 3000 || matched > 27000 {
		t.Errorf("%d of 30000 random calls matched a rule: the generator no longer tests both outcomes", matched)
	}
}

func ruleName(r *rule) string {
	if r == nil {
		return "none"
	}
	return r.name
}

// TestIndexLargePolicy covers policies wider than the bitset Decide keeps
// on its stack.
func TestIndexLargePolicy(t *testing.T) {
	var rules []RuleConfig
	for i := range indexWords*64 + 10 {
		rules = append(rules, RuleConfig{Name: fmt.Sprintf("r%d", i), Tools: []string{fmt.Sprintf("t%d", i)}, Action: "deny"})
	}
	rules = append(rules, RuleConfig{Name: "last", Tools: []string{"t*"}, Action: "allow"})
	p, err := Compile(Config{Rules: rules}, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ tool, rule string }{{"t0", "r0"}, {"t520", "r520"}, {"t9999", "last"}, {"x", "default"}} {
		if d := p.Decide(Input{Method: MethodToolsCall, Tool: c.tool}); d.Rule != c.rule {
			t.Errorf("tool %s: rule %s, want %s", c.tool, d.Rule, c.rule)
		}
	}
}

// FuzzFoldKey checks that foldKey equates exactly the strings that
// strings.EqualFold does.
func FuzzFoldKey(f *testing.F) {
	for _, p := range [][2]string{{"eng", "ENG"}, {"k", "\u212a"}, {"s", "\u017f"}, {"\xff", "\xfe"}, {"ä", "Ä"}, {"a", "b"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
			t.Fatalf("foldKey(%q)==foldKey(%q) is %v, EqualFold is %v", a, b, got, want)
		}
	})
}
