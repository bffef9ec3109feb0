package qapi

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// openCommands accept arguments beyond those in their schema, which QEMU
// passes on: device_add's device properties, and before QEMU 6.0 those of
// netdev_add and object-add, whose arguments are not yet a union there
// (so they are open only without a union). Extra arguments are typed by
// guessing.
var openCommands = map[string]bool{"device_add": true, "netdev_add": true, "object-add": true}

// Build returns the arguments of command name from its raw key=value
// arguments, typed by the schema:
//
//   - str: the text as typed, so `id=123` is "123";
//   - int: decimal (with optional sign and _ separators), 0x hex, 0o
//     octal or 0b binary, optionally with a K, M, G, T, P or E suffix
//     (binary multiples), within int64 or uint64;
//   - number: an integer or a finite decimal/float;
//   - bool: true/false, on/off, yes/no (in any case);
//   - enum: one of its values, exactly;
//   - null: null;
//   - object: key.member=value words, or a JSON (or Python literal)
//     object, whose members are checked too;
//   - array: a JSON array, whose elements are checked;
//   - alternate: JSON for an object or array branch, null for a null
//     branch, then an integer or number, a boolean (only true/false when
//     there is a string branch), an enum value, else a string;
//   - any: qmp-shell's guessing.
//
// Unions select their branch's members by their discriminator, whatever
// the argument order. Unknown argument names, missing mandatory
// arguments and ill-typed values are *ValidationError errors, with a
// "did you mean" suggestion when a name or enum value is close; malformed
// words are *SyntaxError errors. An unknown command is an error unless
// the schema is nil or empty. Without types (a nil or names-only schema,
// or a command whose argument type is missing) the values are guessed.
// The result is nil when args is empty.
func (s *Schema) Build(name string, args []KeyValue) (map[string]any, error) {
	if s == nil || len(s.types) == 0 {
		return guessKVs(args)
	}
	si, ok := s.Command(name)
	if !ok {
		e := &ValidationError{Command: name, Msg: "unknown command " + strconv.Quote(name)}
		e.Suggestion = s.Suggest(name)
		return nil, e
	}
	return s.commandArgs(si, args)
}

// commandArgs is Build for a command found in the schema.
func (s *Schema) commandArgs(si *SchemaInfo, args []KeyValue) (map[string]any, error) {
	open := false
	if at := s.types[si.ArgType]; openCommands[si.Name] && at != nil && at.Tag == "" {
		open = true
	}
	return s.build(si.Name, si.ArgType, open, args)
}

// BuildAction is Build for the data of a transaction action of type typ
// (one line of a `transaction(` block). The result is never nil.
func (s *Schema) BuildAction(typ string, args []KeyValue) (map[string]any, error) {
	union := s.actionUnion()
	if union == nil {
		data, err := guessKVs(args)
		if data == nil && err == nil {
			data = map[string]any{}
		}
		return data, err
	}
	wrapper, ok := s.variant(union, typ)
	if !ok {
		e := &ValidationError{Command: typ, Msg: "unknown transaction action " + strconv.Quote(typ)}
		e.Suggestion = closest(typ, s.ActionTypes())
		return nil, e
	}
	dataType := ""
	if wrapper != nil {
		for _, m := range wrapper.Members {
			if m.Name == "data" {
				dataType = m.Type
			}
		}
	}
	data, err := s.build(typ, dataType, false, args)
	if data == nil && err == nil {
		data = map[string]any{}
	}
	return data, err
}

func (s *Schema) build(name, argType string, open bool, args []KeyValue) (map[string]any, error) {
	si := s.types[argType]
	if !s.typed || si == nil || si.MetaType != "object" {
		return guessKVs(args)
	}
	root, err := buildTree(args, false)
	if err != nil {
		return nil, err
	}
	c := &checker{s: s, cmd: name, open: open}
	m, err := c.object("", si, root.fields())
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, nil
	}
	return m, nil
}

// CommandArgs types the arguments of command name for sending, as Build
// does, except that a command the schema does not know has its values
// guessed instead of being an error: the server has the last word on
// which commands exist (it answers CommandNotFound, which Explain adds a
// suggestion to).
func (s *Schema) CommandArgs(name string, args []KeyValue) (map[string]any, error) {
	si, ok := s.Command(name)
	if !ok {
		return guessKVs(args)
	}
	return s.commandArgs(si, args)
}

// Explain adds to err, the server's error reply to command name sent with
// args, what the schema finds wrong with the command: the command meant
// for CommandNotFound, else the argument problem that Build reports. It
// returns err unchanged when the schema sees nothing wrong. The caller
// knows what an error reply is (the client's error type); the schema does
// not, so pass only those.
func (s *Schema) Explain(name string, args []KeyValue, err error) error {
	if s == nil {
		return err
	}
	if _, ok := s.Command(name); !ok {
		if sugg := s.Suggest(name); sugg != "" {
			return &HintError{Err: err, Hint: "did you mean " + strconv.Quote(sugg) + "?"}
		}
		return err
	}
	if !s.HasTypes() {
		return err
	}
	_, berr := s.Build(name, args)
	var ve *ValidationError
	if !errors.As(berr, &ve) {
		return err
	}
	hint := ve.Msg
	if ve.Suggestion != "" {
		hint += "; did you mean " + strconv.Quote(ve.Suggestion) + "?"
	}
	return &HintError{Err: err, Hint: strings.TrimSpace(hint)}
}

// checker types and validates the arguments of one command.
type checker struct {
	s    *Schema
	cmd  string
	open bool // the top-level object accepts unknown members
}

func (c *checker) fail(arg, suggestion, msg string) error {
	return &ValidationError{Command: c.cmd, Arg: arg, Msg: msg, Suggestion: suggestion}
}

// object types the given fields of an object type at path ("" for the
// command's arguments): unknown names first, then each value, then
// missing members.
func (c *checker) object(path string, si *SchemaInfo, fs []field) (map[string]any, error) {
	var tagErr error
	var fl flat
	c.s.flatten(si, func(tag, typ string) (string, bool) {
		f, ok := findField(fs, tag)
		if !ok || tagErr != nil {
			return "", false
		}
		v, err := c.field(joinPath(path, tag), typ, f)
		if err != nil {
			tagErr = err
			return "", false
		}
		str, ok := v.(string)
		return str, ok
	}, &fl, 0)
	if tagErr != nil {
		return nil, tagErr
	}
	open := c.open && path == ""
	for _, f := range fs {
		if _, ok := memberNamed(fl.members, f.name); ok || open || fl.maybe[f.name] {
			continue
		}
		p := joinPath(path, f.name)
		msg := "unknown argument " + strconv.Quote(p)
		if len(fl.members) == 0 && path == "" {
			return nil, c.fail(p, "", msg+" ("+c.cmd+" takes no arguments)")
		}
		names := make([]string, len(fl.members))
		for i, m := range fl.members {
			names[i] = m.Name
		}
		sugg := closest(f.name, names)
		if sugg != "" {
			sugg = joinPath(path, sugg)
		}
		return nil, c.fail(p, sugg, msg)
	}
	out := make(map[string]any, len(fs))
	for _, f := range fs {
		m, ok := memberNamed(fl.members, f.name)
		if !ok {
			if fl.maybe[f.name] {
				continue // the missing discriminator is reported below
			}
			m.Type = "any" // an open command's extra argument
		}
		v, err := c.field(joinPath(path, f.name), m.Type, f)
		if err != nil {
			return nil, err
		}
		out[f.name] = v
	}
	for _, m := range fl.members {
		if _, given := out[m.Name]; !given && !m.Optional() {
			return nil, c.fail(joinPath(path, m.Name), "", "argument "+strconv.Quote(joinPath(path, m.Name))+" is missing")
		}
	}
	return out, nil
}

// field types one given member.
func (c *checker) field(path, typ string, f field) (any, error) {
	if f.node == nil {
		return c.json(path, typ, f.json)
	}
	return c.node(path, typ, f.node)
}

// node types raw text and dotted members.
func (c *checker) node(path, typ string, n *node) (any, error) {
	si := c.s.types[typ]
	if si == nil || si.MetaType == "builtin" && si.JSONType == "value" {
		return guessNode(path, n)
	}
	if len(n.kids) == 0 {
		return c.text(path, si, n.val)
	}
	obj := si
	if si.MetaType == "alternate" {
		obj = nil
		for _, m := range si.Members {
			if b := c.s.types[m.Type]; b != nil && b.MetaType == "object" {
				obj = b
			}
		}
	}
	if obj == nil || obj.MetaType != "object" {
		k := c.s.kind(si)
		if si.MetaType == "enum" {
			k = "an enum value"
		}
		return nil, c.fail(path, "", "argument "+strconv.Quote(path)+" is "+k+", not an object")
	}
	fs := n.fields()
	if n.leaf {
		base, err := parseStructured(n.val)
		if err != nil {
			return nil, &SyntaxError{Token: n.key, Msg: "invalid JSON value: " + err.Error()}
		}
		m, ok := base.(map[string]any)
		if !ok {
			return nil, conflict(n.key, strings.Split(n.key, "."))
		}
		for _, jf := range jsonFields(m) {
			if _, dup := n.kids[jf.name]; dup {
				return nil, &SyntaxError{Token: joinPath(n.key, jf.name), Msg: "key is set more than once"}
			}
			fs = append(fs, jf)
		}
	}
	return c.object(path, obj, fs)
}

// maxShown bounds how much of a bad value an error message quotes.
const maxShown = 40

func shown(text string) string {
	if len(text) > maxShown {
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "..."
	}
	return strconv.Quote(text)
}

func shownJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	s := string(b)
	if len(s) > maxShown {
		return shown(s)
	}
	return s
}

func (c *checker) expects(path, desc, got string) error {
	return c.fail(path, "", "argument "+strconv.Quote(path)+" expects "+desc+", got "+got)
}

// text types the raw text of a value.
func (c *checker) text(path string, si *SchemaInfo, val string) (any, error) {
	switch si.MetaType {
	case "builtin":
		switch si.JSONType {
		case "string":
			return val, nil
		case "int":
			n, err := parseInteger(val)
			if err == errRange {
				return nil, c.fail(path, "", "argument "+strconv.Quote(path)+" is out of range: "+shown(val))
			}
			if err != nil {
				return nil, c.expects(path, "an integer", shown(val))
			}
			return n, nil
		case "number":
			if n, err := parseInteger(val); err == nil {
				return n, nil
			}
			f, err := strconv.ParseFloat(val, 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, c.expects(path, "a number", shown(val))
			}
			return f, nil
		case "boolean":
			if b, ok := parseBool(val, true); ok {
				return b, nil
			}
			return nil, c.expects(path, "a boolean (true/false, on/off, yes/no)", shown(val))
		case "null":
			if val == "null" {
				return nil, nil
			}
			return nil, c.expects(path, "null", shown(val))
		}
		return parseValue(path, val)
	case "enum":
		if slices.Contains(enumValues(si), val) {
			return val, nil
		}
		return nil, c.badEnum(path, si, val)
	case "array":
		if strings.HasPrefix(val, "[") {
			v, err := c.parseJSON(path, val)
			if err != nil {
				return nil, err
			}
			return c.json(path, si.Name, v)
		}
		return nil, c.expects(path, "an array ([...])", shown(val))
	case "object":
		if strings.HasPrefix(val, "{") {
			v, err := c.parseJSON(path, val)
			if err != nil {
				return nil, err
			}
			return c.json(path, si.Name, v)
		}
		return nil, c.expects(path, "an object ("+path+".MEMBER=VALUE or {...})", shown(val))
	case "alternate":
		return c.alternateText(path, si, val)
	}
	return parseValue(path, val)
}

func (c *checker) parseJSON(path, val string) (any, error) {
	v, err := parseStructured(val)
	if err != nil {
		return nil, &SyntaxError{Token: path, Msg: "invalid JSON value: " + err.Error()}
	}
	return v, nil
}

func (c *checker) badEnum(path string, si *SchemaInfo, got string) error {
	vals := enumValues(si)
	msg := "argument " + strconv.Quote(path) + " has invalid value " + shown(got)
	sugg := closest(got, vals)
	if sugg == "" {
		msg += " (expected one of " + strings.Join(vals, ", ") + ")"
	}
	return c.fail(path, sugg, msg)
}

// alternateText picks an alternate's branch for raw text; see Build.
func (c *checker) alternateText(path string, si *SchemaInfo, val string) (any, error) {
	var byKind [8]*SchemaInfo // indexed by jsonKind
	for _, m := range si.Members {
		if b := c.s.types[m.Type]; b != nil {
			byKind[c.s.jsonKind(b)] = b
		}
	}
	stringy := byKind[kindString]
	switch {
	case strings.HasPrefix(val, "{") && byKind[kindObject] != nil:
		return c.text(path, byKind[kindObject], val)
	case strings.HasPrefix(val, "[") && byKind[kindArray] != nil:
		return c.text(path, byKind[kindArray], val)
	case val == "null" && byKind[kindNull] != nil:
		return nil, nil
	}
	if b := byKind[kindNumber]; b != nil {
		if v, err := c.text(path, b, val); err == nil {
			return v, nil
		}
	}
	if byKind[kindBool] != nil {
		if v, ok := parseBool(val, stringy == nil); ok {
			return v, nil
		}
	}
	if stringy != nil {
		// A string branch takes anything; an enum branch's error, with
		// its suggestion, is the most useful one to show.
		v, err := c.text(path, stringy, val)
		if err == nil || stringy.MetaType == "enum" {
			return v, err
		}
	}
	return nil, c.expects(path, c.s.kind(si), shown(val))
}

// json checks a value given as JSON against its type, and converts it
// where the type says how (objects and arrays are rebuilt).
func (c *checker) json(path, typ string, v any) (any, error) {
	si := c.s.types[typ]
	if si == nil {
		return v, nil
	}
	bad := func() error { return c.expects(path, c.s.kind(si), shownJSON(v)) }
	switch si.MetaType {
	case "builtin":
		ok := false
		switch si.JSONType {
		case "string":
			_, ok = v.(string)
		case "int":
			switch v.(type) {
			case int64, uint64:
				ok = true
			}
		case "number":
			switch v.(type) {
			case int64, uint64, float64:
				ok = true
			}
		case "boolean":
			_, ok = v.(bool)
		case "null":
			ok = v == nil
		default:
			ok = true
		}
		if !ok {
			return nil, bad()
		}
		return v, nil
	case "enum":
		str, ok := v.(string)
		if !ok {
			return nil, bad()
		}
		if !slices.Contains(enumValues(si), str) {
			return nil, c.badEnum(path, si, str)
		}
		return v, nil
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return nil, bad()
		}
		out := make([]any, len(arr))
		for i, e := range arr {
			ev, err := c.json(path+"["+strconv.Itoa(i)+"]", si.ElementType, e)
			if err != nil {
				return nil, err
			}
			out[i] = ev
		}
		return out, nil
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, bad()
		}
		return c.object(path, si, jsonFields(m))
	case "alternate":
		want := kindOfValue(v)
		for _, mem := range si.Members {
			if b := c.s.types[mem.Type]; b != nil && c.s.jsonKind(b) == want {
				return c.json(path, b.Name, v)
			}
		}
		return nil, bad()
	}
	return v, nil
}
