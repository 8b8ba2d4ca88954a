package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
)

// decoder fills a Config from the YAML syntax tree, field by field, so that
// one bad value or unknown key is reported and skipped instead of stopping
// the whole decoding: every problem in the file is reported at once, each
// at its line, under its field path, in words about YAML rather than Go.
type decoder struct {
	report func(line int, path, msg string)
	// failed holds the paths that could not be decoded; validation errors
	// at or under them would only repeat the problem and are dropped.
	failed map[string]bool
}

var durationType = reflect.TypeOf(time.Duration(0))

func (d *decoder) fail(n ast.Node, path, format string, args ...any) {
	d.failed[path] = true
	d.report(nodeLine(n), path, fmt.Sprintf(format, args...))
}

// decode stores node n into v, the value at path.
func (d *decoder) decode(n ast.Node, v reflect.Value, path string) {
	if n == nil {
		return
	}
	if _, ok := n.(*ast.NullNode); ok {
		return // the zero value: absent and null mean the same
	}
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem(), path)
		v.Set(e)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		d.text(n, v, path)
	case reflect.Int:
		d.integer(n, v, path)
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.fail(n, path, "must be true or false, not %s", kind(n))
			return
		}
		v.SetBool(b.Value)
	default:
		// Every field of Config is one of the kinds above; a new kind is
		// a programming error, reported rather than silently ignored.
		d.fail(n, path, "cannot be read (unsupported field type %s)", v.Type())
	}
}

// pairs returns the key-value pairs of a mapping, or ok false.
func pairs(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

// key returns the text of a mapping key, or ok false for a key that is not
// plain text (a list, a mapping, a merge key).
func key(kv *ast.MappingValueNode) (string, bool) {
	if kv.Key == nil || kv.Key.IsMergeKey() {
		return "", false
	}
	switch k := ast.Node(kv.Key).(type) {
	case *ast.StringNode:
		return k.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		if tk := k.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

// each calls f for every key of the mapping n, reporting keys that are not
// text and keys given twice.
func (d *decoder) each(n ast.Node, path string, f func(k string, kv *ast.MappingValueNode)) bool {
	kvs, ok := pairs(n)
	if !ok {
		d.fail(n, path, "must be a mapping of keys to values, not %s", kind(n))
		return false
	}
	seen := map[string]int{}
	for _, kv := range kvs {
		k, ok := key(kv)
		if !ok {
			d.fail(kv.Key, path, "keys must be plain names (merge keys << and complex keys are not allowed)")
			continue
		}
		at := join(path, k)
		if first, dup := seen[k]; dup {
			d.fail(kv.Key, at, "is given twice (first on line %d)", first)
			continue
		}
		seen[k] = nodeLine(kv.Key)
		f(k, kv)
	}
	return true
}

func (d *decoder) structure(n ast.Node, v reflect.Value, path string) {
	fields := yamlFields(v.Type())
	d.each(n, path, func(k string, kv *ast.MappingValueNode) {
		i, ok := fields[k]
		if !ok {
			d.report(nodeLine(kv.Key), join(path, k), unknownKey(k, fields))
			return
		}
		d.decode(kv.Value, v.Field(i), join(path, k))
	})
}

func (d *decoder) mapping(n ast.Node, v reflect.Value, path string) {
	if v.Type().Key().Kind() != reflect.String {
		d.fail(n, path, "cannot be read (unsupported key type %s)", v.Type().Key())
		return
	}
	m := reflect.MakeMap(v.Type())
	ok := d.each(n, path, func(k string, kv *ast.MappingValueNode) {
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(kv.Value, e, join(path, k))
		m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
	})
	if ok {
		v.Set(m)
	}
}

func (d *decoder) sequence(n ast.Node, v reflect.Value, path string) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.fail(n, path, "must be a list, such as [a, b] or one \"- item\" per line, not %s", kind(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
	for i, item := range seq.Values {
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) text(n ast.Node, v reflect.Value, path string) {
	switch s := n.(type) {
	case *ast.StringNode:
		v.SetString(s.Value)
	case *ast.LiteralNode:
		if s.Value != nil {
			v.SetString(s.Value.Value)
		}
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		// A scalar written without quotes (8080, true) is its text.
		if tk := n.GetToken(); tk != nil {
			v.SetString(tk.Value)
		}
	default:
		d.fail(n, path, "must be text, not %s", kind(n))
	}
}

func (d *decoder) integer(n ast.Node, v reflect.Value, path string) {
	i, ok := n.(*ast.IntegerNode)
	if s, isText := n.(*ast.StringNode); isText && s.Value != "" && strings.Trim(s.Value, "0123456789") == "" {
		d.fail(n, path, "is too large")
		return
	}
	if !ok {
		d.fail(n, path, "must be a whole number such as 20, not %s", kind(n))
		return
	}
	var x int64
	switch val := i.Value.(type) {
	case int64:
		x = val
	case uint64:
		if val > 1<<62 {
			d.fail(n, path, "is too large")
			return
		}
		x = int64(val)
	default:
		d.fail(n, path, "must be a whole number such as 20")
		return
	}
	if v.OverflowInt(x) {
		d.fail(n, path, "is too large")
		return
	}
	v.SetInt(x)
}

const durationHint = "must be a duration such as 50s, 15m or 2h30m (units ns, us, ms, s, m, h)"

func (d *decoder) duration(n ast.Node, v reflect.Value, path string) {
	switch s := n.(type) {
	case *ast.StringNode:
		dur, err := time.ParseDuration(strings.TrimSpace(s.Value))
		if err != nil {
			d.fail(n, path, "%s", durationHint)
			return
		}
		v.SetInt(int64(dur))
	case *ast.IntegerNode:
		// 0 needs no unit; any other bare number is ambiguous.
		if x, ok := s.Value.(int64); ok && x == 0 {
			return
		}
		if x, ok := s.Value.(uint64); ok && x == 0 {
			return
		}
		d.fail(n, path, "%s; a bare number has no unit", durationHint)
	default:
		d.fail(n, path, "%s, not %s", durationHint, kind(n))
	}
}

// yamlFields maps the YAML names of t's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || name == "" {
			continue
		}
		fields[name] = i
	}
	return fields
}

// unknownKey says a key is unknown, suggesting the nearest known one.
func unknownKey(k string, fields map[string]int) string {
	known := make([]string, 0, len(fields))
	for name := range fields {
		known = append(known, name)
	}
	sort.Strings(known)
	best, bestDist := "", 3
	for _, name := range known {
		if dist := policy.EditDistance(strings.ToLower(k), name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown key: did you mean %s?", best)
	}
	return "unknown key (known here: " + strings.Join(known, ", ") + ")"
}

// kind names a node's YAML kind for a message.
func kind(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "text"
	case *ast.IntegerNode:
		return "a number"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a decimal number"
	case *ast.BoolNode:
		return "true or false"
	}
	return "this value"
}

func nodeLine(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
