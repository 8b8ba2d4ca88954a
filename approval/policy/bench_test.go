package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// benchArgs is a typical create-issue call.
var benchArgs = []byte(`{"repo":"dev-api","title":"Fix the flaky integration test","body":"` +
	strings.Repeat("The test times out on slow runners. ", 6) + `","labels":["bug","ci"],"assignees":["alice"]}`)

func benchInput() Input {
	return Input{
		User:   "alice@example.com",
		Groups: []string{"engineering", "oncall", "everyone"},
		Server: "github",
		Method: MethodToolsCall,
		Tool:   "create_issue",
		Args:   benchArgs,
	}
}

// benchMatchRule is the rule the benchmark input matches: a glob, a group
// and a CEL condition over the arguments.
func benchMatchRule() RuleConfig {
	return RuleConfig{
		Name: "match", Tools: []string{"create_*"}, Groups: []string{"engineering"},
		When: `args.repo.startsWith("dev-") && size(args.labels) < 5`, Action: "approve",
		Approval: &ApprovalConfig{Approvers: []string{"reviewers"}},
	}
}

// benchRules returns n rules whose last-but-five matches benchInput. The
// others mix globs, users, groups, regular expressions and CEL; about a
// third of the regex and CEL rules pass their tool glob and so are
// evaluated. servers spreads the rules over that many servers (github is
// one); 1 puts every rule on github, the worst case for the server index.
func benchRules(n, servers int) []RuleConfig {
	if n == 1 {
		return []RuleConfig{benchMatchRule()}
	}
	rules := make([]RuleConfig, 0, n)
	matchAt := n - 5
	for i := 0; i < n; i++ {
		if i == matchAt {
			rules = append(rules, benchMatchRule())
			continue
		}
		r := RuleConfig{Name: fmt.Sprintf("r%d", i)}
		if s := i % servers; s == 0 {
			r.Servers = []string{"github"}
		} else {
			r.Servers = []string{fmt.Sprintf("srv%d", s)}
		}
		hit := i%3 == 0 // the tool glob matches create_issue
		switch i % 5 {
		case 0:
			r.Tools, r.Action = []string{fmt.Sprintf("t%d_*", i)}, "allow"
		case 1:
			r.Tools, r.Groups, r.Action = []string{"*_issue"}, []string{fmt.Sprintf("g%d", i)}, "deny"
		case 2:
			r.Tools = []string{fmt.Sprintf("x%d?", i)}
			if hit {
				r.Tools = []string{"*issue*"}
			}
			r.ArgsMatch, r.Action = fmt.Sprintf(`(?i)\bforbidden%d\b`, i), "deny"
		case 3:
			r.Tools = []string{fmt.Sprintf("y%d", i)}
			if hit {
				r.Tools = []string{"create_*"}
			}
			r.When, r.Action = fmt.Sprintf(`args.repo == "prod-%d" || "g%d" in groups`, i, i), "allow"
		case 4:
			r.Users, r.Tools, r.Action = []string{fmt.Sprintf("u%d@example.com", i)}, []string{"*"}, "approve"
			r.Approval = &ApprovalConfig{Approvers: []string{"reviewers"}}
		}
		rules = append(rules, r)
	}
	return rules
}

func benchPolicy(b *testing.B, n, servers int) *Policy {
	known := []string{"github"}
	for s := 1; s < servers; s++ {
		known = append(known, fmt.Sprintf("srv%d", s))
	}
	p, err := Compile(Config{Rules: benchRules(n, servers)}, CompileOptions{KnownServers: known})
	if err != nil {
		b.Fatal(err)
	}
	if d := p.Decide(benchInput()); d.Rule != "match" {
		b.Fatalf("benchmark input decided by %q (%s)", d.Rule, d.EvalError)
	}
	return p
}

// BenchmarkDecide compares 200 rules with a one-rule baseline in the same
// run. Besides ns/op (the mean) it reports p50-ns, the median of individually
// timed decisions (which includes ~30ns of clock overhead).
func BenchmarkDecide(b *testing.B) {
	cases := []struct {
		name       string
		n, servers int
	}{
		{"rules=1", 1, 1},
		{"rules=200/servers=10", 200, 10},
		{"rules=200/servers=1", 200, 1},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p := benchPolicy(b, c.n, c.servers)
			in := benchInput()
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(in)
			}
			b.StopTimer()
			b.ReportMetric(medianDecide(p, in, 5001), "p50-ns")
		})
	}
}

func medianDecide(p *Policy, in Input, n int) float64 {
	samples := make([]time.Duration, n)
	for i := range samples {
		start := time.Now()
		p.Decide(in)
		samples[i] = time.Since(start)
	}
	slices.Sort(samples)
	return float64(samples[n/2].Nanoseconds())
}

// BenchmarkDecideNoArgs is the path of a rule set whose candidates need no
// arguments: nothing is parsed.
func BenchmarkDecideNoArgs(b *testing.B) {
	p := benchPolicy(b, 200, 10)
	in := benchInput()
	in.Tool = "get_issue" // passes no regex or CEL rule's glob
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(in)
	}
}

func BenchmarkCanonicalJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchArgs)))
	for b.Loop() {
		if _, err := CanonicalJSON(benchArgs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompile200(b *testing.B) {
	rules := benchRules(200, 10)
	for b.Loop() {
		if _, err := Compile(Config{Rules: rules}, CompileOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
