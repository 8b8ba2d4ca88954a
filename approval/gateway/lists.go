package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// listSpec says where a list result keeps its entries and what names each.
type listSpec struct {
	member string // the result member holding the array: "tools", "prompts", …
	key    string // the entry member naming it: "name", "uri", …
}

// listSpecOf returns how to filter the result of a list method.
func listSpecOf(method string) (listSpec, bool) {
	switch method {
	case policy.MethodToolsList:
		return listSpec{"tools", "name"}, true
	case policy.MethodPromptsList:
		return listSpec{"prompts", "name"}, true
	case policy.MethodResourcesList:
		return listSpec{"resources", "uri"}, true
	case policy.MethodResourceTemplates:
		return listSpec{"resourceTemplates", "uriTemplate"}, true
	case policy.MethodTasksList:
		return listSpec{"tasks", "taskId"}, true
	}
	return listSpec{}, false
}

// errListUnreadable refuses a list result the gateway cannot read; it is
// withheld rather than forwarded unfiltered.
var errListUnreadable = errors.New("list result unreadable")

// filterList removes from a list result every entry keep refuses, and every
// entry whose naming member is missing or not a string (a client could read
// such an entry differently from the gateway, for example a "Name" member
// with a case-insensitive parser). The result is read strictly: members
// matched exactly, duplicates refused. Everything else in the result is
// kept as it came, in order; when nothing is removed the message is
// returned unchanged.
func filterList(m *bridge.Message, spec listSpec, keep func(string) bool) (*bridge.Message, error) {
	if m.Error != nil || len(m.Result) == 0 {
		return m, nil
	}
	members, err := objectMembers(m.Result)
	if err != nil {
		return nil, err
	}
	at := -1
	for i, mem := range members {
		switch {
		case mem.name == spec.member:
			at = i
		case strings.EqualFold(mem.name, spec.member):
			return nil, fmt.Errorf("%w: member %q beside %q", errListUnreadable, mem.name, spec.member)
		}
	}
	if at < 0 {
		return m, nil // nothing listed
	}
	entries, err := arrayElements(members[at].value)
	if err != nil {
		return nil, err
	}
	kept := make([]jsontext.Value, 0, len(entries))
	for _, e := range entries {
		if name, ok := entryName(e, spec.key); ok && keep(name) {
			kept = append(kept, e)
		}
	}
	if len(kept) == len(entries) {
		return m, nil
	}
	var arr bytes.Buffer
	arr.WriteByte('[')
	for i, e := range kept {
		if i > 0 {
			arr.WriteByte(',')
		}
		arr.Write(e)
	}
	arr.WriteByte(']')
	members[at].value = arr.Bytes()
	var res bytes.Buffer
	res.WriteByte('{')
	for i, mem := range members {
		if i > 0 {
			res.WriteByte(',')
		}
		name, err := jsontext.AppendQuote(nil, mem.name)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errListUnreadable, err)
		}
		res.Write(name)
		res.WriteByte(':')
		res.Write(mem.value)
	}
	res.WriteByte('}')
	return replaceResult(m, res.Bytes())
}

// replaceResult returns a response like m with another result.
func replaceResult(m *bridge.Message, result []byte) (*bridge.Message, error) {
	id := m.ID
	if id == nil {
		id = []byte("null")
	}
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(id)
	b.WriteString(`,"result":`)
	b.Write(result)
	b.WriteByte('}')
	return bridge.Parse(b.Bytes())
}

// jsonMember is one member of a JSON object, in document order.
type jsonMember struct {
	name  string
	value jsontext.Value
}

// objectMembers reads a JSON object's members strictly (duplicate names
// are an error), keeping their order and raw values.
func objectMembers(obj []byte) ([]jsonMember, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, fmt.Errorf("%w: not an object", errListUnreadable)
	}
	var out []jsonMember
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errListUnreadable, err)
		}
		name := tok.String() // read before the next call voids the token
		val, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errListUnreadable, err)
		}
		out = append(out, jsonMember{name: name, value: val.Clone()})
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("%w: %v", errListUnreadable, err)
	}
	return out, nil
}

// arrayElements reads a JSON array's elements as raw values.
func arrayElements(arr []byte) ([]jsontext.Value, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(arr))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return nil, fmt.Errorf("%w: the list is not an array", errListUnreadable)
	}
	var out []jsontext.Value
	for dec.PeekKind() != ']' {
		val, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errListUnreadable, err)
		}
		out = append(out, val.Clone())
	}
	return out, nil
}

// entryName returns the string member key of a list entry. ok is false when
// the entry is not an object, lacks the member, holds it as another type,
// or also has a case variant of it.
func entryName(e jsontext.Value, key string) (string, bool) {
	if e.Kind() != '{' {
		return "", false
	}
	var fields map[string]jsontext.Value
	if jsonv2.Unmarshal(e, &fields) != nil {
		return "", false
	}
	raw, found := fields[key]
	if !found || raw.Kind() != '"' {
		return "", false
	}
	for name := range fields {
		if name != key && strings.EqualFold(name, key) {
			return "", false
		}
	}
	var s string
	if jsonv2.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
