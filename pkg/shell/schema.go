package shell

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Schema is a QMP server's schema, from QAPI introspection
// (query-qmp-schema), indexed for Tab completion, help, typing the values
// of key=value arguments and validating a command before it is sent.
//
// A Schema is immutable once built, so its methods may be called from
// several goroutines at once (say the line editor's completion and the
// read-eval-print loop). A nil *Schema is valid and knows nothing: Build,
// ParseLine and ParseArgs fall back to qmp-shell's value guessing, and
// completion offers only the built-ins it is given. A schema made by
// SchemaFromCommands knows command names only, for servers without
// query-qmp-schema: it completes and checks command names, and guesses
// values.
type Schema struct {
	types    map[string]*SchemaInfo // every entry, by name
	commands []string               // sorted
	events   []string               // sorted
	order    map[string]int         // entry name → position in the input
	typed    bool                   // from introspection, not names only
}

// SchemaInfo is one entry of query-qmp-schema's reply (QAPI's SchemaInfo).
// Which fields are set depends on MetaType: "builtin" (JSONType), "enum"
// (Values, and Members with their names and features), "array"
// (ElementType), "object" (Members, and for a union Tag and Variants),
// "alternate" (Members, with only their Type set), "command" (ArgType,
// RetType, AllowOOB) and "event" (ArgType). Type names other than the
// built-ins and commands and events are opaque: QEMU numbers them.
type SchemaInfo struct {
	Name        string          `json:"name"`
	MetaType    string          `json:"meta-type"`
	Features    []string        `json:"features,omitempty"`
	JSONType    string          `json:"json-type,omitempty"`
	Values      []string        `json:"values,omitempty"`
	ElementType string          `json:"element-type,omitempty"`
	Members     []SchemaMember  `json:"members,omitempty"`
	Tag         string          `json:"tag,omitempty"`
	Variants    []SchemaVariant `json:"variants,omitempty"`
	ArgType     string          `json:"arg-type,omitempty"`
	RetType     string          `json:"ret-type,omitempty"`
	AllowOOB    bool            `json:"allow-oob,omitempty"`
}

// MarshalJSON writes the entry as QEMU does, keeping an empty "members"
// list of an object, enum or alternate.
func (si *SchemaInfo) MarshalJSON() ([]byte, error) {
	type plain SchemaInfo // without the method
	var v struct {
		*plain
		Members *[]SchemaMember `json:"members,omitempty"`
	}
	v.plain = (*plain)(si)
	switch {
	case si.Members != nil:
		v.Members = &si.Members
	case si.MetaType == "object" || si.MetaType == "alternate":
		empty := []SchemaMember{}
		v.Members = &empty
	}
	return json.Marshal(v)
}

// SchemaMember is a member of an object, an enum or an alternate. An
// object member is optional when Default is present (QEMU always sends
// null there); an alternate's members have only Type.
type SchemaMember struct {
	Name     string          `json:"name,omitempty"`
	Type     string          `json:"type,omitempty"`
	Default  json.RawMessage `json:"default,omitempty"`
	Features []string        `json:"features,omitempty"`
}

// Optional reports whether the object member may be left out.
func (m *SchemaMember) Optional() bool { return len(m.Default) > 0 }

// SchemaVariant is a branch of a union: the members of the object Type
// apply when the union's Tag member has the value Case.
type SchemaVariant struct {
	Case string `json:"case"`
	Type string `json:"type"`
}

// LoadSchema indexes the return value of query-qmp-schema: a JSON array of
// SchemaInfo objects. A whole reply, {"return": [...]}, is accepted too.
func LoadSchema(raw []byte) (*Schema, error) {
	raw = bytes.TrimSpace(raw)
	var infos []*SchemaInfo
	if len(raw) > 0 && raw[0] == '{' {
		var reply struct {
			Return []*SchemaInfo `json:"return"`
		}
		if err := json.Unmarshal(raw, &reply); err != nil {
			return nil, errors.New("schema: " + err.Error())
		}
		if reply.Return == nil {
			return nil, errors.New(`schema: expected a JSON array or a reply with "return"`)
		}
		infos = reply.Return
	} else if err := json.Unmarshal(raw, &infos); err != nil {
		return nil, errors.New("schema: " + err.Error())
	}
	s := &Schema{
		types: make(map[string]*SchemaInfo, len(infos)),
		order: make(map[string]int, len(infos)),
		typed: true,
	}
	for i, si := range infos {
		if si == nil || si.Name == "" || si.MetaType == "" {
			return nil, errors.New("schema: entry " + strconv.Itoa(i) + " has no name or meta-type")
		}
		if _, dup := s.types[si.Name]; dup {
			return nil, errors.New("schema: entry " + strconv.Quote(si.Name) + " appears twice")
		}
		s.types[si.Name] = si
		s.order[si.Name] = i
		switch si.MetaType {
		case "command":
			s.commands = append(s.commands, si.Name)
		case "event":
			s.events = append(s.events, si.Name)
		}
	}
	sort.Strings(s.commands)
	sort.Strings(s.events)
	return s, nil
}

// SchemaFromCommands returns a schema that knows only command names, such
// as those of query-commands, for a server without query-qmp-schema.
func SchemaFromCommands(names []string) *Schema {
	s := &Schema{types: make(map[string]*SchemaInfo, len(names))}
	for _, n := range names {
		if _, dup := s.types[n]; dup || n == "" {
			continue
		}
		s.types[n] = &SchemaInfo{Name: n, MetaType: "command"}
		s.commands = append(s.commands, n)
	}
	sort.Strings(s.commands)
	return s
}

// FetchSchema asks a server for its schema through execute, which runs
// one QMP command without arguments and returns its "return" value (for
// example a closure over qmp.Client.Execute). It tries query-qmp-schema,
// then, for a server without it, query-commands, whose names make a
// names-only schema (see SchemaFromCommands). The error, set only when
// both fail, is query-qmp-schema's; callers that degrade silently can
// ignore it and use the nil *Schema, which falls back to guessing.
func FetchSchema(ctx context.Context, execute func(ctx context.Context, command string) (json.RawMessage, error)) (*Schema, error) {
	ret, err := execute(ctx, "query-qmp-schema")
	if err == nil {
		var s *Schema
		if s, err = LoadSchema(ret); err == nil {
			return s, nil
		}
	}
	if ctx.Err() != nil {
		return nil, err
	}
	cret, cerr := execute(ctx, "query-commands")
	if cerr != nil {
		return nil, err
	}
	var cmds []struct{ Name string }
	if json.Unmarshal(cret, &cmds) != nil || len(cmds) == 0 {
		return nil, err
	}
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.Name
	}
	return SchemaFromCommands(names), nil
}

// HasTypes reports whether the schema came from introspection and so
// knows arguments and their types, not just command names.
func (s *Schema) HasTypes() bool { return s != nil && s.typed }

// Commands returns the command names, sorted.
func (s *Schema) Commands() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.commands)
}

// Events returns the event names, sorted.
func (s *Schema) Events() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.events)
}

// Command returns the entry of a command.
func (s *Schema) Command(name string) (*SchemaInfo, bool) {
	return s.lookup(name, "command")
}

// Event returns the entry of an event.
func (s *Schema) Event(name string) (*SchemaInfo, bool) {
	return s.lookup(name, "event")
}

// Type returns any entry by name: a command, an event, or a type such as
// a command's ArgType.
func (s *Schema) Type(name string) (*SchemaInfo, bool) {
	if s == nil {
		return nil, false
	}
	si, ok := s.types[name]
	return si, ok
}

func (s *Schema) lookup(name, meta string) (*SchemaInfo, bool) {
	si, ok := s.Type(name)
	if !ok || si.MetaType != meta {
		return nil, false
	}
	return si, true
}

// Suggest returns the command name closest to a mistyped one (by edit
// distance, ignoring case and the difference between '-' and '_'), or ""
// when none is close enough or command exists.
func (s *Schema) Suggest(command string) string {
	if s == nil {
		return ""
	}
	if _, ok := s.Command(command); ok {
		return ""
	}
	return closest(command, s.commands)
}

// enumValues returns an enum's values: "values", or the names of
// "members" for a QEMU that no longer sends "values".
func enumValues(si *SchemaInfo) []string {
	if si.Values != nil || si.Members == nil {
		return si.Values
	}
	vals := make([]string, len(si.Members))
	for i, m := range si.Members {
		vals[i] = m.Name
	}
	return vals
}

// ValidationError reports a command line that the schema rejects, so that
// it is not sent. Error gives one line such as
//
//	blockdev-add: unknown argument "nodename" (did you mean "node-name"?)
//	object-add: argument "qom-type" is missing
//	unknown command "query-stat" (did you mean "query-status"?)
type ValidationError struct {
	// Command is the command (or transaction action type) being checked.
	Command string
	// Arg is the dotted argument concerned, "" when the command itself
	// is unknown.
	Arg string
	// Msg states the problem, without the command prefix and suggestion.
	Msg string
	// Suggestion is the valid name or value closest to what was typed,
	// or "".
	Suggestion string
}

// Error returns "COMMAND: MSG (did you mean "SUGGESTION"?)", without the
// prefix when Arg is empty (Msg then names the command itself).
func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Arg != "" && e.Command != "" {
		b.WriteString(e.Command)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Suggestion != "" {
		b.WriteString(" (did you mean ")
		b.WriteString(strconv.Quote(e.Suggestion))
		b.WriteString("?)")
	}
	return b.String()
}

// openCommands accept arguments beyond those in their schema, which QEMU
// passes on: device_add's device properties, and before QEMU 6.0 those of
// netdev_add and object-add, whose arguments are not yet a union there
// (so they are open only without a union). Extra arguments are typed by
// guessing.
var openCommands = map[string]bool{"device_add": true, "netdev_add": true, "object-add": true}

// ParseLine is ParseLine typed and checked by the schema: the same syntax
// and results, but each value typed by its argument's schema type, and a
// line the schema rejects is an error (a *ValidationError) instead of a
// command. Raw JSON lines are passed through unchecked. A one-line
// transaction block has its actions typed too.
func (s *Schema) ParseLine(line string) (*Command, error) {
	if s == nil {
		return ParseLine(line)
	}
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || trimmed[0] == '#' {
		return nil, nil
	}
	if trimmed[0] == '{' {
		return parseRaw(trimmed)
	}
	if StartsTransaction(line) {
		var t Transaction
		done, err := t.AddTyped(line, s)
		if err != nil {
			return nil, err
		}
		if !done {
			return nil, &SyntaxError{Token: transactionOpen, Msg: `transaction block is not closed by ")" on this line`}
		}
		return t.Command(), nil
	}
	name, kvs, err := SplitLine(line)
	if err != nil {
		return nil, err
	}
	args, err := s.Build(name, kvs)
	if err != nil {
		return nil, err
	}
	return &Command{Name: name, Args: args}, nil
}

// ParseArgs is the package's ParseArgs typed and checked by the schema,
// for the arguments of command name (as in `qmpsh exec NAME key=value...`).
func (s *Schema) ParseArgs(name string, tokens []string) (map[string]any, error) {
	kvs, err := SplitArgs(tokens)
	if err != nil {
		return nil, err
	}
	return s.Build(name, kvs)
}

// AddTyped is Add with each action's data typed and checked by s, as
// Schema.BuildAction does; with a nil s it is Add.
func (t *Transaction) AddTyped(line string, s *Schema) (done bool, err error) {
	if s == nil {
		return t.Add(line)
	}
	return t.add(line, func(typ string, words []string) (map[string]any, error) {
		kvs, err := SplitArgs(words)
		if err != nil {
			return nil, err
		}
		return s.BuildAction(typ, kvs)
	})
}

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
//   - any: qmp-shell's guessing (ParseArgs).
//
// Unions select their branch's members by their discriminator, whatever
// the argument order. Unknown argument names, missing mandatory
// arguments and ill-typed values are *ValidationError errors, with a
// "did you mean" suggestion when a name or enum value is close; malformed
// words are *SyntaxError errors. An unknown command is an error unless
// the schema is nil or empty. Without types (a nil or names-only schema,
// or a command whose argument type is missing) the values are guessed as
// by ParseArgs. The result is nil when args is empty.
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
	open := false
	if at := s.types[si.ArgType]; openCommands[name] && at != nil && at.Tag == "" {
		open = true
	}
	return s.build(name, si.ArgType, open, args)
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
		e.Suggestion = closest(typ, s.actionTypes())
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

// actionUnion returns the union of transaction actions: the element type
// of the "actions" argument of the transaction command.
func (s *Schema) actionUnion() *SchemaInfo {
	cmd, ok := s.Command("transaction")
	if !ok || !s.typed {
		return nil
	}
	args := s.types[cmd.ArgType]
	if args == nil {
		return nil
	}
	for _, m := range args.Members {
		if m.Name != "actions" {
			continue
		}
		arr := s.types[m.Type]
		if arr == nil || arr.MetaType != "array" {
			return nil
		}
		if u := s.types[arr.ElementType]; u != nil && u.Tag != "" {
			return u
		}
	}
	return nil
}

// actionTypes returns the transaction action types, sorted.
func (s *Schema) actionTypes() []string {
	u := s.actionUnion()
	if u == nil {
		return nil
	}
	var names []string
	for _, v := range u.Variants {
		names = append(names, v.Case)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// variant returns the branch object of a union for a discriminator value:
// ok is false when the value is not a case of the union's tag enum, and
// the object is nil when the value selects no members.
func (s *Schema) variant(union *SchemaInfo, value string) (*SchemaInfo, bool) {
	for _, v := range union.Variants {
		if v.Case == value {
			return s.types[v.Type], true
		}
	}
	for _, m := range union.Members {
		if m.Name == union.Tag {
			if e := s.types[m.Type]; e != nil && e.MetaType == "enum" {
				return nil, slices.Contains(enumValues(e), value)
			}
		}
	}
	return nil, false
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

// guessKVs types raw arguments with qmp-shell's guessing, as ParseArgs.
func guessKVs(args []KeyValue) (map[string]any, error) {
	if len(args) == 0 {
		return nil, nil
	}
	dst := make(map[string]any, len(args))
	for _, kv := range args {
		v, err := parseValue(kv.Key, kv.Value)
		if err != nil {
			return nil, err
		}
		if err := setPath(dst, kv.Key, v); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// node is the tree of raw arguments that dotted keys build: a leaf value,
// members, or both (a JSON object value extended by later dotted keys, as
// qmp-shell allows).
type node struct {
	key   string // the dotted key, for messages
	val   string
	leaf  bool
	names []string // members, in the order given
	kids  map[string]*node
}

func (n *node) kid(name string) *node {
	if n == nil {
		return nil
	}
	return n.kids[name]
}

// buildTree arranges raw arguments by their dotted keys, with the errors
// of setPath. A lenient build (for completion) skips bad words instead.
func buildTree(args []KeyValue, lenient bool) (*node, error) {
	root := &node{}
	for _, kv := range args {
		if err := root.add(kv); err != nil && !lenient {
			return nil, err
		}
	}
	return root, nil
}

func (root *node) add(kv KeyValue) error {
	segs := strings.Split(kv.Key, ".")
	for _, s := range segs {
		if s == "" {
			return &SyntaxError{Token: kv.Key, Msg: "empty segment in dotted key"}
		}
	}
	n := root
	for i, s := range segs {
		k := n.kids[s]
		last := i == len(segs)-1
		switch {
		case k == nil:
			k = &node{key: strings.Join(segs[:i+1], ".")}
			if n.kids == nil {
				n.kids = map[string]*node{}
			}
			n.kids[s] = k
			n.names = append(n.names, s)
		case last && len(k.kids) > 0:
			return conflict(kv.Key, segs)
		case last:
			return &SyntaxError{Token: kv.Key, Msg: "key is set more than once"}
		case k.leaf && !strings.HasPrefix(k.val, "{"):
			return conflict(kv.Key, segs[:i+1])
		}
		n = k
	}
	n.val, n.leaf = kv.Value, true
	return nil
}

// field is one given member of an object: raw text and dotted members,
// or a value from JSON.
type field struct {
	name string
	node *node // nil for a JSON value
	json any
}

func (n *node) fields() []field {
	fs := make([]field, len(n.names))
	for i, name := range n.names {
		fs[i] = field{name: name, node: n.kids[name]}
	}
	return fs
}

func jsonFields(m map[string]any) []field {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	fs := make([]field, len(names))
	for i, k := range names {
		fs[i] = field{name: k, json: m[k]}
	}
	return fs
}

func findField(fs []field, name string) (field, bool) {
	for _, f := range fs {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
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

// flat is an object's members with its union branches resolved.
type flat struct {
	members []SchemaMember
	// maybe holds the members of the branches of a union whose
	// discriminator was not given: not unknown, but not allowed either
	// until it is.
	maybe map[string]bool
}

// flatten collects an object's members: its own, and for a union those of
// the branch selected by the discriminator's value, as tagValue reports it
// (ok false when it was not given or is invalid).
func (s *Schema) flatten(si *SchemaInfo, tagValue func(tag string, typ string) (string, bool), fl *flat, depth int) {
	fl.members = append(fl.members, si.Members...)
	if si.Tag == "" || depth > 16 {
		return
	}
	tagType := ""
	for _, m := range si.Members {
		if m.Name == si.Tag {
			tagType = m.Type
		}
	}
	if val, ok := tagValue(si.Tag, tagType); ok {
		if v, _ := s.variant(si, val); v != nil {
			s.flatten(v, tagValue, fl, depth+1)
		}
		return
	}
	if fl.maybe == nil {
		fl.maybe = map[string]bool{}
	}
	for _, v := range si.Variants {
		if b := s.types[v.Type]; b != nil {
			var sub flat
			s.flatten(b, func(string, string) (string, bool) { return "", false }, &sub, depth+1)
			for _, m := range sub.members {
				fl.maybe[m.Name] = true
			}
			for name := range sub.maybe {
				fl.maybe[name] = true
			}
		}
	}
}

func memberNamed(ms []SchemaMember, name string) (SchemaMember, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
	}
	return SchemaMember{}, false
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

// guessNode types raw text and dotted members with qmp-shell's guessing.
func guessNode(path string, n *node) (any, error) {
	if len(n.kids) == 0 {
		return parseValue(n.key, n.val)
	}
	m := map[string]any{}
	if n.leaf {
		v, err := parseValue(n.key, n.val)
		if err != nil {
			return nil, err
		}
		base, ok := v.(map[string]any)
		if !ok {
			return nil, conflict(n.key, strings.Split(n.key, "."))
		}
		m = base
	}
	for _, name := range n.names {
		if _, dup := m[name]; dup {
			return nil, &SyntaxError{Token: joinPath(n.key, name), Msg: "key is set more than once"}
		}
		v, err := guessNode(joinPath(path, name), n.kids[name])
		if err != nil {
			return nil, err
		}
		m[name] = v
	}
	return m, nil
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

// JSON kinds, to match an alternate's branches: QEMU picks the branch by
// the JSON type of the value.
const (
	kindAny = iota
	kindString
	kindNumber
	kindBool
	kindNull
	kindObject
	kindArray
)

func (s *Schema) jsonKind(si *SchemaInfo) int {
	switch si.MetaType {
	case "enum":
		return kindString
	case "object":
		return kindObject
	case "array":
		return kindArray
	case "builtin":
		switch si.JSONType {
		case "string":
			return kindString
		case "int", "number":
			return kindNumber
		case "boolean":
			return kindBool
		case "null":
			return kindNull
		}
	}
	return kindAny
}

func kindOfValue(v any) int {
	switch v.(type) {
	case string:
		return kindString
	case int64, uint64, float64:
		return kindNumber
	case bool:
		return kindBool
	case nil:
		return kindNull
	case map[string]any:
		return kindObject
	case []any:
		return kindArray
	}
	return kindAny
}

// kind describes a type in a few words, "a string", "an integer or a
// boolean".
func (s *Schema) kind(si *SchemaInfo) string {
	switch si.MetaType {
	case "builtin":
		switch si.JSONType {
		case "string":
			return "a string"
		case "int":
			return "an integer"
		case "number":
			return "a number"
		case "boolean":
			return "a boolean"
		case "null":
			return "null"
		}
		return "a JSON value"
	case "enum":
		return "one of " + strings.Join(enumValues(si), ", ")
	case "array":
		return "an array"
	case "object":
		return "an object"
	case "alternate":
		var parts []string
		for _, m := range si.Members {
			if b := s.types[m.Type]; b != nil {
				k := s.kind(b)
				if b.MetaType == "enum" {
					k = "an enum value"
				}
				parts = append(parts, k)
			}
		}
		return joinOr(parts)
	}
	return "a JSON value"
}

func joinOr(parts []string) string {
	switch len(parts) {
	case 0:
		return "a JSON value"
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

// parseBool accepts true/false and, when all is set, on/off and yes/no,
// in any case.
func parseBool(s string, all bool) (bool, bool) {
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	case "on", "yes":
		return true, all
	case "off", "no":
		return false, all
	}
	return false, false
}

var errRange = errors.New("out of range")

// parseInteger parses an integer for the schema's int type: see Build.
// The result is an int64, or a uint64 above math.MaxInt64.
func parseInteger(s string) (any, error) {
	neg := false
	t := s
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	base := 10
	if len(t) > 2 && t[0] == '0' {
		switch t[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			t = t[2:]
		}
	}
	var shift uint
	if base == 10 && len(t) > 1 {
		if i := strings.IndexByte("KMGTPE", byte(unicode.ToUpper(rune(t[len(t)-1])))); i >= 0 {
			shift = 10 * uint(i+1)
			t = t[:len(t)-1]
		}
	}
	if base == 10 && !isPyInt(t) || t == "" || t[0] == '+' || t[0] == '-' {
		return nil, errors.New("not an integer")
	}
	t = strings.ReplaceAll(t, "_", "")
	u, err := strconv.ParseUint(t, base, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return nil, errRange
		}
		return nil, err
	}
	if shift > 0 {
		if u > math.MaxUint64>>shift {
			return nil, errRange
		}
		u <<= shift
	}
	if neg {
		if u > 1<<63 {
			return nil, errRange
		}
		return -int64(u), nil // wraps correctly for 1<<63
	}
	if u > math.MaxInt64 {
		return u, nil
	}
	return int64(u), nil
}

// closest returns the candidate nearest to word by edit distance (with
// adjacent transpositions, ignoring case and '-' versus '_'), the first
// in sorted order on a tie, or "" when none is near enough: within 1 edit
// for words under 4 characters, else within max(2, len/3).
func closest(word string, cands []string) string {
	if word == "" {
		return ""
	}
	norm := func(s string) string {
		return strings.ReplaceAll(strings.ToLower(s), "_", "-")
	}
	w := norm(word)
	limit := 1
	if n := utf8.RuneCountInString(word); n >= 4 {
		limit = max(2, n/3)
	}
	best, bestD := "", limit+1
	for _, c := range cands {
		if c == word {
			continue
		}
		d := editDistance(w, norm(c), limit+1)
		if d < bestD || d == bestD && d <= limit && c < best {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b
// (Levenshtein plus adjacent transpositions), by runes; it may stop early
// and return bound when the distance is at least bound.
func editDistance(a, b string, bound int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d >= bound || -d >= bound {
		return bound
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin >= bound {
			return bound
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(rb)], bound)
}
