package policy

import (
	"fmt"
	"strings"
)

// Methods the policy knows by name. A rule may name any method (or a glob
// of methods, such as "tasks/*"); these are the ones whose target and
// fallback the policy understands.
const (
	MethodToolsCall         = "tools/call"
	MethodToolsList         = "tools/list"
	MethodResourcesRead     = "resources/read"
	MethodResourcesList     = "resources/list"
	MethodResourceTemplates = "resources/templates/list"
	MethodSubscribe         = "resources/subscribe"
	MethodUnsubscribe       = "resources/unsubscribe"
	MethodPromptsGet        = "prompts/get"
	MethodPromptsList       = "prompts/list"
	MethodComplete          = "completion/complete"
	MethodSetLevel          = "logging/setLevel"
	MethodTasksGet          = "tasks/get"
	MethodTasksResult       = "tasks/result"
	MethodTasksCancel       = "tasks/cancel"
	MethodTasksList         = "tasks/list"
	MethodSamplingCreate    = "sampling/createMessage"
	MethodElicitCreate      = "elicitation/create"
	MethodRootsList         = "roots/list"
)

// knownMethods are the methods with a bit in a rule's method set, in bit
// order. A method outside it is matched by the rule's method globs.
var knownMethods = [...]string{
	MethodToolsCall, MethodToolsList, MethodResourcesRead, MethodResourcesList, MethodResourceTemplates,
	MethodSubscribe, MethodUnsubscribe, MethodPromptsGet, MethodPromptsList, MethodComplete, MethodSetLevel,
	MethodTasksGet, MethodTasksResult, MethodTasksCancel, MethodTasksList,
	MethodSamplingCreate, MethodElicitCreate, MethodRootsList,
}

// methodSet is a set of known methods, one bit each.
type methodSet uint32

// methodBit maps a method to its bit in a methodSet (its index in
// knownMethods); 0 for a method the policy does not know by name. It is on
// every decision's path, hence a switch.
func methodBit(m string) methodSet {
	switch m {
	case MethodToolsCall:
		return 1 << 0
	case MethodToolsList:
		return 1 << 1
	case MethodResourcesRead:
		return 1 << 2
	case MethodResourcesList:
		return 1 << 3
	case MethodResourceTemplates:
		return 1 << 4
	case MethodSubscribe:
		return 1 << 5
	case MethodUnsubscribe:
		return 1 << 6
	case MethodPromptsGet:
		return 1 << 7
	case MethodPromptsList:
		return 1 << 8
	case MethodComplete:
		return 1 << 9
	case MethodSetLevel:
		return 1 << 10
	case MethodTasksGet:
		return 1 << 11
	case MethodTasksResult:
		return 1 << 12
	case MethodTasksCancel:
		return 1 << 13
	case MethodTasksList:
		return 1 << 14
	case MethodSamplingCreate:
		return 1 << 15
	case MethodElicitCreate:
		return 1 << 16
	case MethodRootsList:
		return 1 << 17
	}
	return 0
}

// IsPlumbing reports whether method is protocol plumbing that the gateway
// always lets through without asking the policy: the requests initialize
// and ping, and notifications (methods under "notifications/"). No rule can
// decide it.
func IsPlumbing(method string) bool {
	return IsPlumbingRequest(method) || IsNotification(method)
}

// IsPlumbingRequest reports whether a request method is initialize or ping.
func IsPlumbingRequest(method string) bool { return method == "initialize" || method == "ping" }

// IsNotification reports whether method names an MCP notification.
func IsNotification(method string) bool { return strings.HasPrefix(method, "notifications/") }

// methodClass says how a method is decided when no rule matches it.
type methodClass uint8

const (
	// classDefault methods get the policy's `default`: tools/call,
	// resources/read, prompts/get, the server-to-client requests and every
	// method the policy does not know.
	classDefault methodClass = iota
	// classListing methods are allowed: their results are filtered, so the
	// caller sees only what it may use (tools/list, prompts/list,
	// resources/list, resources/templates/list, tasks/list).
	classListing
	// classSetting methods change only what the session is sent, and are
	// allowed: logging/setLevel, resources/unsubscribe.
	classSetting
	// classDependent methods act on a target that another method reads:
	// completion/complete (of a prompt or a resource) and
	// resources/subscribe. They run only when that method would be allowed
	// for the same target, and then when no rule refuses them.
	classDependent
	// classTask methods act on a task: tasks/get, tasks/result and
	// tasks/cancel carry the decision of the call that created the task.
	classTask
)

func classOf(method string) methodClass {
	switch method {
	case MethodToolsList, MethodPromptsList, MethodResourcesList, MethodResourceTemplates, MethodTasksList:
		return classListing
	case MethodSetLevel, MethodUnsubscribe:
		return classSetting
	case MethodComplete, MethodSubscribe:
		return classDependent
	case MethodTasksGet, MethodTasksResult, MethodTasksCancel:
		return classTask
	}
	return classDefault
}

// Reference types of completion/complete.
const (
	RefPrompt   = "ref/prompt"
	RefResource = "ref/resource"
)

// dependency returns the method and target a dependent call needs allowed:
// prompts/get of the prompt a completion completes, resources/read of the
// resource it completes or a subscription watches. ok is false when the
// input does not say (a completion without a known reference type), which
// refuses the call.
func dependency(in Input) (method string, ok bool) {
	switch {
	case in.Method == MethodSubscribe:
		return MethodResourcesRead, true
	case in.Method == MethodComplete && in.Ref == RefPrompt:
		return MethodPromptsGet, true
	case in.Method == MethodComplete && in.Ref == RefResource:
		return MethodResourcesRead, true
	}
	return "", false
}

// compileMethods validates a rule's `methods` and returns its set of known
// methods and the globs that match other method names. Any method name is
// allowed; a name one edit away from a known method draws a warning, since
// it is most likely a typo that leaves the rule matching nothing.
func compileMethods(v *validator, i int, methods []string) (methodSet, []glob) {
	var set methodSet
	var globs []glob
	for j, m := range methods {
		at := fmt.Sprintf("rules[%d].methods[%d]", i, j)
		switch {
		case m == "":
			v.add(at, "empty method name")
			continue
		case !strings.ContainsAny(m, "*?") && IsPlumbing(m):
			v.add(at, "%q is protocol plumbing: the gateway always lets it through, so no rule can decide it", m)
			continue
		}
		g := compileGlob(m)
		matched := false
		for k, known := range knownMethods {
			if g.match(known) {
				set |= 1 << k
				matched = true
			}
		}
		if !matched || g.kind != globLiteral {
			globs = append(globs, g)
		}
		if !matched && g.kind == globLiteral {
			if sg := suggest(m, knownMethods[:]); sg != "" {
				v.warn(at, "unknown method %q (did you mean %q?); the rule matches only calls of exactly %q", m, sg, m)
			}
		}
	}
	return set, globs
}

// matchMethod reports whether a rule's methods include the input's.
func (r *rule) matchMethod(st *evalState) bool {
	if st.methodBit != 0 {
		return r.methods&st.methodBit != 0
	}
	return anyGlob(r.methodGlobs, st.in.Method)
}
