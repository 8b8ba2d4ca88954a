package gateway

import (
	"encoding/json"
	"errors"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// Call is what a request asks for, read once from its params by the strict
// decoding and used by every stage: policy, approval digests, pins,
// masking, audit and the access log. The message's bytes passed
// bridge.Parse, so no member is duplicated or spelt in another case; Call
// adds the type checks, so that what the gateway decides on is what the
// upstream reads.
type Call struct {
	Method string
	// Target is the tool name of tools/call, the prompt name of
	// prompts/get, the URI of resources/read, resources/subscribe and
	// resources/unsubscribe, the prompt name or resource URI that
	// completion/complete completes, and the task id of tasks/*.
	Target string
	// RefType is completion/complete's reference type: "ref/prompt" or
	// "ref/resource".
	RefType string
	// Args are the tool or prompt arguments; nil for other methods, whose
	// policy input is the whole params.
	Args json.RawMessage
	// Err is set when the params are not what the method defines (a
	// tools/call whose name is not a string, arguments that are not an
	// object). The policy stage refuses such a request with -32602; it is
	// never decided as an empty target.
	Err error
}

// callKey names the parsed Call among a message's derived values.
type callKey struct{}

// CallOf reads the target and arguments of a request, once per message.
func CallOf(m *bridge.Message) Call {
	return m.Derived(callKey{}, func() any { return parseCall(m) }).(Call)
}

// errParams is wrapped by every Call.Err.
var errParams = errors.New("invalid params")

func paramsError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errParams, fmt.Sprintf(format, args...))
}

func parseCall(m *bridge.Message) Call {
	c := Call{Method: m.Method}
	if m.Kind != bridge.KindRequest && m.Kind != bridge.KindNotification {
		return c
	}
	switch m.Method {
	case "tools/call", "prompts/get":
		var p struct {
			Name      *string        `json:"name"`
			Arguments jsontext.Value `json:"arguments"`
		}
		if err := decodeParams(m.Params, &p); err != nil {
			c.Err = err
			return c
		}
		if p.Name == nil {
			c.Err = paramsError(`%s needs "name", a string`, m.Method)
			return c
		}
		c.Target = *p.Name
		// null is no arguments, as an absent member is: the upstream reads
		// no arguments from either (or refuses both).
		if p.Arguments != nil && p.Arguments.Kind() != 'n' {
			if p.Arguments.Kind() != '{' {
				c.Err = paramsError(`"arguments" must be an object`)
				return c
			}
			c.Args = json.RawMessage(p.Arguments)
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		var p struct {
			URI *string `json:"uri"`
		}
		if err := decodeParams(m.Params, &p); err != nil {
			c.Err = err
			return c
		}
		if p.URI == nil {
			c.Err = paramsError(`%s needs "uri", a string`, m.Method)
			return c
		}
		c.Target = *p.URI
	case "completion/complete":
		var p struct {
			Ref *struct {
				Type *string `json:"type"`
				Name *string `json:"name"`
				URI  *string `json:"uri"`
			} `json:"ref"`
		}
		if err := decodeParams(m.Params, &p); err != nil {
			c.Err = err
			return c
		}
		if p.Ref == nil || p.Ref.Type == nil {
			c.Err = paramsError(`completion/complete needs "ref" with a string "type"`)
			return c
		}
		c.RefType = *p.Ref.Type
		switch {
		case c.RefType == "ref/prompt" && p.Ref.Name != nil && p.Ref.URI == nil:
			c.Target = *p.Ref.Name
		case c.RefType == "ref/resource" && p.Ref.URI != nil && p.Ref.Name == nil:
			c.Target = *p.Ref.URI
		default:
			c.Err = paramsError(`"ref" must be {"type":"ref/prompt","name":…} or {"type":"ref/resource","uri":…}`)
		}
	case "tasks/get", "tasks/result", "tasks/cancel":
		var p struct {
			TaskID *string `json:"taskId"`
		}
		if err := decodeParams(m.Params, &p); err != nil {
			c.Err = err
			return c
		}
		if p.TaskID == nil {
			c.Err = paramsError(`%s needs "taskId", a string`, m.Method)
			return c
		}
		c.Target = *p.TaskID
	}
	return c
}

// decodeParams reads params (which must be an object, or absent) into v:
// members matched exactly, types checked. It never echoes the input.
func decodeParams(params json.RawMessage, v any) error {
	if len(params) == 0 {
		return nil
	}
	if jsontext.Value(params).Kind() != '{' {
		return paramsError(`"params" must be an object`)
	}
	if err := jsonv2.Unmarshal(params, v); err != nil {
		var se *jsonv2.SemanticError
		if errors.As(err, &se) && se.JSONPointer != "" {
			return paramsError("member %s has the wrong type", se.JSONPointer)
		}
		return paramsError("params could not be read")
	}
	return nil
}
