package policy

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// celVariables are the names a `when` expression may use.
var celVariables = []string{"user", "groups", "server", "tool", "method", "args"}

// maxCELCost bounds the work one `when` evaluation with a comprehension may
// do (in cel-go's abstract cost units, roughly operations). The arguments
// come from the agent, so without a bound a nested comprehension over a
// large list could pin a CPU. Exceeding it is an evaluation error, which
// fails closed. Expressions without comprehensions are linear in the size of
// the arguments and are not metered.
const maxCELCost = 200_000

// celFunctions are common functions and macros, offered as suggestions when
// an expression names one that does not exist.
var celFunctions = []string{
	"startsWith", "endsWith", "contains", "matches", "size", "has", "exists",
	"exists_one", "all", "map", "filter", "int", "double", "string", "type",
}

// newCELEnv returns the environment every `when` expression is checked
// against. It is built once per Compile.
func newCELEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("user", cel.StringType),
		cel.Variable("groups", cel.ListType(cel.StringType)),
		cel.Variable("server", cel.StringType),
		cel.Variable("tool", cel.StringType),
		cel.Variable("method", cel.StringType),
		cel.Variable("args", cel.MapType(cel.StringType, cel.DynType)),
		cel.CrossTypeNumericComparisons(true),
	)
}

// compiledWhen is a checked, planned `when` expression.
type compiledWhen struct {
	prg      cel.Program
	usesArgs bool
}

// compileWhen checks expr and returns its program, or the problems found,
// each phrased for a person.
func compileWhen(env *cel.Env, expr string) (*compiledWhen, []string) {
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			msg := friendlyCELMessage(e.Message)
			if loc := e.Location; loc != nil && loc.Line() > 0 && strings.Contains(expr, "\n") {
				msg = fmt.Sprintf("%s (line %d, column %d of the expression)", msg, loc.Line(), loc.Column()+1)
			} else if loc != nil && loc.Line() > 0 && len(expr) > 40 {
				msg = fmt.Sprintf("%s (column %d of the expression)", msg, loc.Column()+1)
			}
			msgs = append(msgs, msg)
		}
		return nil, msgs
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) {
		hint := ""
		if t.IsExactType(types.DynType) {
			hint = " (compare it, e.g. `args.flag == true`)"
		}
		return nil, []string{fmt.Sprintf("expression must be bool, got %s%s", t, hint)}
	}
	popts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if hasComprehension(ast) {
		// Cost tracking is not free, so only expressions that can loop
		// over the arguments (exists, all, map, filter, ...) pay for it.
		popts = append(popts, cel.CostLimit(maxCELCost))
	}
	prg, err := env.Program(ast, popts...)
	if err != nil {
		return nil, []string{friendlyCELMessage(err.Error())}
	}
	cw := &compiledWhen{prg: prg}
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if ref.Name == "args" {
			cw.usesArgs = true
		}
	}
	return cw, nil
}

// friendlyCELMessage drops cel-go's noise and adds a did-you-mean for names
// close to a known variable or function.
func friendlyCELMessage(msg string) string {
	const prefix = "undeclared reference to '"
	if rest, ok := strings.CutPrefix(msg, prefix); ok && strings.Contains(rest, "'") {
		name := rest[:strings.IndexByte(rest, '\'')]
		out := fmt.Sprintf("undeclared reference to '%s'", name)
		if s := suggest(name, celVariables); s != "" {
			return out + fmt.Sprintf(" (did you mean '%s'?)", s)
		}
		if s := suggest(name, celFunctions); s != "" {
			return out + fmt.Sprintf(" (did you mean '%s'?)", s)
		}
		return out + " (known variables: " + strings.Join(celVariables, ", ") + ")"
	}
	return strings.TrimSpace(strings.ReplaceAll(msg, " (in container '')", ""))
}

// suggest returns the candidate closest to name by edit distance, if it is
// close enough to be a likely typo.
func suggest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := EditDistance(strings.ToLower(name), strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := 1
	if len(name) > 4 {
		limit = 2
	}
	if bestD == 0 || bestD > limit {
		return ""
	}
	return best
}

// EditDistance is the Levenshtein distance between a and b, in bytes; the
// configuration loader uses it for its "did you mean" suggestions too.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// activation binds the CEL variables for one decision. Values are converted
// to CEL values once, on first use.
type activation struct {
	in     Input
	args   *argsState
	user   ref.Val
	server ref.Val
	tool   ref.Val
	method ref.Val
	groups ref.Val
}

// hasComprehension reports whether the checked expression contains a
// comprehension (the expansion of exists, all, exists_one, map, filter).
func hasComprehension(a *cel.Ast) bool {
	found := false
	celast.PostOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.ComprehensionKind {
			found = true
		}
	}))
	return found
}

var _ interpreter.Activation = (*activation)(nil)

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	in := &a.in
	switch name {
	case "user":
		if a.user == nil {
			a.user = types.String(in.User)
		}
		return a.user, true
	case "server":
		if a.server == nil {
			a.server = types.String(in.Server)
		}
		return a.server, true
	case "tool":
		if a.tool == nil {
			a.tool = types.String(in.Tool)
		}
		return a.tool, true
	case "method":
		if a.method == nil {
			a.method = types.String(in.Method)
		}
		return a.method, true
	case "groups":
		if a.groups == nil {
			a.groups = types.NewStringList(types.DefaultTypeAdapter, in.Groups)
		}
		return a.groups, true
	case "args":
		v, err := a.args.celArgs()
		if err != nil {
			return nil, false
		}
		return v, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// evalWhen evaluates the expression. ok is the result when err is nil.
func (cw *compiledWhen) eval(st *evalState) (ok bool, err error) {
	if cw.usesArgs {
		if _, err := st.celArgs(); err != nil {
			return false, err
		}
	}
	if st.act == nil {
		st.act = &activation{in: st.in, args: st.argState()}
	}
	out, _, err := cw.prg.Eval(st.act)
	if err != nil {
		return false, err
	}
	b, isBool := out.(types.Bool)
	if !isBool {
		return false, fmt.Errorf("expression returned %s, not bool", out.Type())
	}
	return bool(b), nil
}
