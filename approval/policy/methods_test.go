package policy

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// methodsPolicy is a policy of the ordinary shape: default deny, tool
// rules, and rules for prompts and resources.
func methodsPolicy(t *testing.T) *Policy {
	return mustCompile(t, "deny",
		RuleConfig{Name: "reads", Servers: []string{"github"}, Tools: []string{"get_*"}, Action: "allow", Mask: "strict"},
		RuleConfig{Name: "docs", Methods: []string{MethodResourcesRead, MethodPromptsGet}, Tools: []string{"file:///docs/*", "summarize"}, Action: "allow", Mask: "docs"},
		RuleConfig{Name: "reviewed-prompt", Methods: []string{MethodPromptsGet}, Tools: []string{"deploy"}, Action: "approve",
			Approval: &ApprovalConfig{Approvers: []string{"sec"}}},
		RuleConfig{Name: "no-completion-of-docs-index", Methods: []string{MethodComplete}, Tools: []string{"file:///docs/index"}, Action: "deny"},
		RuleConfig{Name: "no-task-results-for-interns", Methods: []string{"tasks/*"}, Groups: []string{"interns"}, Action: "deny"},
		RuleConfig{Name: "vendor-method", Methods: []string{"x-vendor/*"}, Tools: []string{"*"}, Action: "allow"},
		RuleConfig{Name: "no-debug-logs", Methods: []string{MethodSetLevel}, Servers: []string{"warehouse"}, Action: "deny"},
	)
}

func TestMethodFallbacks(t *testing.T) {
	p := methodsPolicy(t)
	creator := &Decision{Action: Allow, Rule: "reads", RuleIndex: 0, Mask: "strict"}
	in := func(method, tool string, f ...func(*Input)) Input {
		i := Input{User: "alice@example.com", Groups: []string{"engineering"}, Server: "github", Method: method, Tool: tool}
		for _, g := range f {
			g(&i)
		}
		return i
	}
	prompt := func(i *Input) { i.Ref = RefPrompt }
	resource := func(i *Input) { i.Ref = RefResource }
	task := func(i *Input) { i.Task = creator }
	intern := func(i *Input) { i.Groups = []string{"interns"} }
	tests := []struct {
		name   string
		in     Input
		action Action
		rule   string
		mask   string
	}{
		{"tools/call default", in(MethodToolsCall, "delete_repo"), Deny, "default", ""},
		{"tools/list allowed under default deny", in(MethodToolsList, ""), Allow, "default", ""},
		{"prompts/list allowed", in(MethodPromptsList, ""), Allow, "default", ""},
		{"resources/list allowed", in(MethodResourcesList, ""), Allow, "default", ""},
		{"templates allowed", in(MethodResourceTemplates, ""), Allow, "default", ""},
		{"tasks/list allowed", in(MethodTasksList, ""), Allow, "default", ""},
		{"setLevel allowed", in(MethodSetLevel, ""), Allow, "default", ""},
		{"setLevel denied by its rule", in(MethodSetLevel, "", func(i *Input) { i.Server = "warehouse" }), Deny, "no-debug-logs", ""},
		{"unsubscribe allowed", in(MethodUnsubscribe, "file:///etc/passwd"), Allow, "default", ""},
		{"unknown method gets default", in("x-other/thing", ""), Deny, "default", ""},
		{"unknown method named by glob", in("x-vendor/run", ""), Allow, "vendor-method", ""},
		{"completion of allowed prompt", in(MethodComplete, "summarize", prompt), Allow, "docs", "docs"},
		{"completion of denied prompt", in(MethodComplete, "secret-prompt", prompt), Deny, "default", ""},
		{"completion of approve prompt", in(MethodComplete, "deploy", prompt), Deny, "reviewed-prompt", ""},
		{"completion of allowed resource", in(MethodComplete, "file:///docs/a", resource), Allow, "docs", "docs"},
		{"completion of denied resource", in(MethodComplete, "file:///etc/passwd", resource), Deny, "default", ""},
		{"completion refused by its own rule", in(MethodComplete, "file:///docs/index", resource), Deny, "no-completion-of-docs-index", ""},
		{"completion without ref", in(MethodComplete, "summarize"), Deny, "default", ""},
		{"prompt name is not a resource", in(MethodComplete, "deploy", resource), Deny, "default", ""},
		{"subscribe to allowed resource", in(MethodSubscribe, "file:///docs/a"), Allow, "docs", "docs"},
		{"subscribe to denied resource", in(MethodSubscribe, "file:///etc/passwd"), Deny, "default", ""},
		{"task result carries creator", in(MethodTasksResult, "get_issue", task), Allow, "reads", "strict"},
		{"task get carries creator", in(MethodTasksGet, "get_issue", task), Allow, "reads", "strict"},
		{"task cancel carries creator", in(MethodTasksCancel, "get_issue", task), Allow, "reads", "strict"},
		{"task without creator", in(MethodTasksResult, "get_issue"), Deny, "default", ""},
		{"task rule refuses", in(MethodTasksResult, "get_issue", task, intern), Deny, "no-task-results-for-interns", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := checkDecide(t, p, tt.in)
			if d.Action != tt.action || d.Rule != tt.rule || d.Mask != tt.mask {
				t.Errorf("Decide = %s rule %q mask %q (%s), want %s rule %q mask %q", d.Action, d.Rule, d.Mask, d.Reason, tt.action, tt.rule, tt.mask)
			}
			if d.Action == Deny && d.Reason == "" {
				t.Errorf("a denial without a reason")
			}
			if d.Action == Approve {
				t.Errorf("no test case here should be held")
			}
		})
	}
}

func TestDependentReasons(t *testing.T) {
	p := methodsPolicy(t)
	d := p.Decide(Input{Server: "github", Method: MethodComplete, Ref: RefPrompt, Tool: "deploy"})
	if !strings.Contains(d.Reason, "prompts/get") || !strings.Contains(d.Reason, "approval") {
		t.Errorf("reason %q does not say the prompt needs approval", d.Reason)
	}
	d = p.Decide(Input{Server: "github", Method: MethodSubscribe, Tool: "file:///etc/passwd"})
	if !strings.Contains(d.Reason, "resources/read") {
		t.Errorf("reason %q does not name resources/read", d.Reason)
	}
}

func TestMethodGlobsAndWarnings(t *testing.T) {
	p, err := Compile(Config{Rules: []RuleConfig{
		{Name: "all-tasks", Methods: []string{"tasks/*"}, Action: "allow"},
		{Name: "typo", Methods: []string{"prompts/gett"}, Action: "allow"},
		{Name: "vendor", Methods: []string{"acme/deploy"}, Action: "allow"},
	}}, testServers)
	if err != nil {
		t.Fatal(err)
	}
	want := []FieldError{{"rules[1].methods[0]", `unknown method "prompts/gett" (did you mean "prompts/get"?); the rule matches only calls of exactly "prompts/gett"`}}
	if got := p.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("warnings %v, want %v", got, want)
	}
	for _, tt := range []struct {
		method string
		rule   string
	}{
		{MethodTasksList, "all-tasks"}, {"tasks/future", "all-tasks"}, {"acme/deploy", "vendor"},
		{"prompts/gett", "typo"}, {MethodPromptsGet, "default"}, {"acme/other", "default"},
	} {
		if d := checkDecide(t, p, Input{Method: tt.method}); d.Rule != tt.rule {
			t.Errorf("%s decided by %q, want %q", tt.method, d.Rule, tt.rule)
		}
	}
	for _, bad := range []string{"", "ping", "notifications/cancelled"} {
		if _, err := Compile(Config{Rules: []RuleConfig{{Methods: []string{bad}, Action: "deny"}}}, testServers); err == nil {
			t.Errorf("methods [%q] compiled", bad)
		}
	}
}

func TestVisibleTargets(t *testing.T) {
	p := methodsPolicy(t)
	vis := func(method, target string) bool {
		return p.Visible("alice@example.com", []string{"engineering"}, "files", method, target)
	}
	if !vis(MethodPromptsGet, "summarize") || vis(MethodPromptsGet, "secret") || !vis(MethodPromptsGet, "deploy") {
		t.Errorf("prompt visibility wrong")
	}
	if !vis(MethodResourcesRead, "file:///docs/a") || vis(MethodResourcesRead, "file:///etc/passwd") {
		t.Errorf("resource visibility wrong")
	}
	tmpl := func(pol *Policy, tmpl string) bool {
		return pol.VisibleTemplate("alice@example.com", nil, "files", tmpl)
	}
	for tm, want := range map[string]bool{
		"file:///docs/{name}":   true,
		"file:///{path}":        true, // could produce file:///docs/...
		"file:///etc/{name}":    false,
		"db://customers/{id}":   false,
		"file:///docs{/path*}":  true,
		"file:///etc/{name}.md": false,
	} {
		if got := tmpl(p, tm); got != want {
			t.Errorf("VisibleTemplate(%q) = %v, want %v", tm, got, want)
		}
	}
	denyAll := mustCompile(t, "allow", RuleConfig{Name: "no-resources", Methods: []string{MethodResourcesRead}, Action: "deny"})
	if tmpl(denyAll, "db://x/{id}") {
		t.Errorf("a template shown though every read is denied")
	}
	allowSome := mustCompile(t, "deny", RuleConfig{Name: "c", Methods: []string{MethodResourcesRead}, Tools: []string{"db://x/1?"}, Action: "allow"})
	if !tmpl(allowSome, "db://x/{id}") || tmpl(allowSome, "db://y/{id}") {
		t.Errorf("template intersection wrong")
	}
}

func TestGlobsIntersect(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"abc", "abc", true}, {"abc", "abd", false}, {"a*", "*c", true}, {"a*", "b*", false},
		{"a?c", "a*", true}, {"a?c", "abcd", false}, {"*", "", true}, {"?", "", false},
		{"file:///docs/*", "file:///*", true}, {"file:///docs/*", "file:///etc/*", false},
		{"*x*", "*y*", true}, {"ab*cd", "a*d", true}, {"ab*cd", "ab*ce", false}, {"é?", "?ü", true},
	} {
		if got := globsIntersect(tt.a, tt.b); got != tt.want {
			t.Errorf("globsIntersect(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := globsIntersect(tt.b, tt.a); got != tt.want {
			t.Errorf("globsIntersect(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

// FuzzGlobsIntersect checks the intersection of two globs against the
// matcher: a literal string (no wildcards) intersects a glob exactly when it
// matches it, whatever the order, and every glob intersects itself.
func FuzzGlobsIntersect(f *testing.F) {
	for _, s := range [][2]string{{"a*c", "abc"}, {"*x*", "yyxy"}, {"?", "é"}, {"file:///docs/*", "file:///docs/a/b"}, {"a?c", "ac"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) || len(pattern) > 64 || len(s) > 64 {
			return
		}
		if !globsIntersect(pattern, pattern) {
			t.Fatalf("%q does not intersect itself", pattern)
		}
		if strings.ContainsAny(s, "*?") {
			return
		}
		want := globMatch(pattern, s)
		if got := globsIntersect(pattern, s); got != want {
			t.Fatalf("globsIntersect(%q, %q) = %v, globMatch = %v", pattern, s, got, want)
		}
		if got := globsIntersect(s, pattern); got != want {
			t.Fatalf("globsIntersect(%q, %q) = %v, globMatch = %v", s, pattern, got, want)
		}
	})
}

func TestMethodBitsMatchKnownMethods(t *testing.T) {
	for i, m := range knownMethods {
		if methodBit(m) != 1<<i {
			t.Errorf("methodBit(%q) = %b, want bit %d", m, methodBit(m), i)
		}
	}
	if methodBit("acme/x") != 0 {
		t.Errorf("an unknown method has a bit")
	}
}
