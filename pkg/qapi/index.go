package qapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strconv"
)

// Schema is a QMP server's schema, from QAPI introspection
// (query-qmp-schema), indexed for Tab completion, help, typing the values
// of key=value arguments and validating a command before it is sent.
//
// A Schema is immutable once built, so its methods may be called from
// several goroutines at once (say the line editor's completion and the
// read-eval-print loop). A nil *Schema is valid and knows nothing: Build,
// BuildAction and CommandArgs fall back to qmp-shell's value guessing,
// and completion offers nothing. A schema made by
// FromCommands knows command names only, for servers without
// query-qmp-schema: it completes and checks command names, and guesses
// values.
type Schema struct {
	types    map[string]*SchemaInfo // every entry, by name
	commands []string               // sorted
	events   []string               // sorted
	order    map[string]int         // entry name → position in the input
	typed    bool                   // from introspection, not names only
	// branchMembers holds, for each union, the names of the members of
	// all its branches, theirs included (see flat.maybe).
	branchMembers map[string]map[string]bool
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

// Load indexes the return value of query-qmp-schema: a JSON array of
// SchemaInfo objects. A whole reply, {"return": [...]}, is accepted too.
func Load(raw []byte) (*Schema, error) {
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
	s.untangle()
	return s, nil
}

// untangle drops what introspection never sends but a broken or hostile
// server could, and would send the type checks round for ever: an
// alternate among an alternate's members, a union among its own
// branches (at any remove). Then it works out each union's branch
// members once, so that checking a union without its discriminator costs
// no walk over every branch of every branch (see flatten).
func (s *Schema) untangle() {
	for _, si := range s.types {
		if si.MetaType == "alternate" {
			si.Members = slices.DeleteFunc(slices.Clone(si.Members), func(m SchemaMember) bool {
				b := s.types[m.Type]
				return b != nil && b.MetaType == "alternate"
			})
		}
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	s.branchMembers = map[string]map[string]bool{}
	var visit func(si *SchemaInfo)
	visit = func(si *SchemaInfo) {
		state[si.Name] = onPath
		names := map[string]bool{}
		si.Variants = slices.DeleteFunc(slices.Clone(si.Variants), func(v SchemaVariant) bool {
			b := s.types[v.Type]
			if b == nil {
				return false
			}
			switch state[b.Name] {
			case onPath:
				return true // a branch that leads back: a cycle
			case unseen:
				visit(b)
			}
			for _, m := range b.Members {
				names[m.Name] = true
			}
			for n := range s.branchMembers[b.Name] {
				names[n] = true
			}
			return false
		})
		state[si.Name] = done
		if len(si.Variants) > 0 {
			s.branchMembers[si.Name] = names
		}
	}
	for _, si := range s.types {
		if si.MetaType == "object" && state[si.Name] == unseen {
			visit(si)
		}
	}
}

// FromCommands returns a schema that knows only command names, such
// as those of query-commands, for a server without query-qmp-schema.
func FromCommands(names []string) *Schema {
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

// Fetch asks a server for its schema through execute, which runs
// one QMP command without arguments and returns its "return" value (for
// example a closure over a QMP client's Execute). It tries query-qmp-schema,
// then, for a server without it, query-commands, whose names make a
// names-only schema (see FromCommands). The error, set only when
// both fail, is query-qmp-schema's; callers that degrade silently can
// ignore it and use the nil *Schema, which falls back to guessing.
func Fetch(ctx context.Context, execute func(ctx context.Context, command string) (json.RawMessage, error)) (*Schema, error) {
	ret, err := execute(ctx, "query-qmp-schema")
	if err == nil {
		var s *Schema
		if s, err = Load(ret); err == nil {
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
	return FromCommands(names), nil
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

// ActionTypes returns the transaction action types, sorted.
func (s *Schema) ActionTypes() []string {
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
	for name := range s.branchMembers[si.Name] {
		fl.maybe[name] = true
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
