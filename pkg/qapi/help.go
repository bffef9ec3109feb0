package qapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// helpWidth is where Help wraps long lines, such as an enum's values.
const helpWidth = 80

// Help describes a command or an event for people: its arguments (or
// event data) with their types, which are optional, enum values, the
// members of nested objects indented below them, the members that each
// branch of a union adds ("when driver is file:"), and a command's return
// type. For example:
//
//	query-status (command)
//
//	Arguments: none
//
//	Returns: object
//	  running: bool
//	  singlestep: bool
//	  status: enum (debug, inmigrate, ...)
//
// An unknown name is a *ValidationError suggesting the closest command or
// event. With a names-only schema, Help says that types are unknown.
func (s *Schema) Help(name string) (string, error) {
	si, err := s.helpEntry(name)
	if err != nil {
		return "", err
	}
	h := &helpWriter{s: s, expanding: map[string]bool{}}
	head := name + " (" + si.MetaType
	for _, f := range si.Features {
		head += ", " + f
	}
	if si.AllowOOB {
		head += ", allow-oob"
	}
	h.line(0, head+")")
	h.b.WriteByte('\n')
	if !s.typed {
		h.line(0, "Arguments: unknown (the server does not describe its schema with query-qmp-schema)")
		return h.b.String(), nil
	}
	label := "Arguments"
	h.rootDesc = name + "'s arguments"
	if si.MetaType == "event" {
		label = "Data"
		h.rootDesc = name + "'s data"
	}
	h.object(label, s.types[si.ArgType])
	if si.MetaType == "command" {
		h.b.WriteByte('\n')
		ret := s.types[si.RetType]
		if ret != nil && ret.MetaType == "object" && len(ret.Members) == 0 && ret.Tag == "" {
			h.line(0, "Returns: nothing")
		} else {
			h.member(0, "Returns", nil, si.RetType)
		}
	}
	if h.full {
		fmt.Fprintf(&h.b, "... (cut short at %d KiB: the schema nests too much to show whole; schema --json NAME gives every type it uses)\n", maxHelp>>10)
	}
	return h.b.String(), nil
}

// HelpJSON returns the schema entries that describe a command or an
// event, as a JSON array: its own entry first, then every type it refers
// to, directly or not, in the order of the server's schema.
func (s *Schema) HelpJSON(name string) ([]byte, error) {
	si, err := s.helpEntry(name)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{si.Name: true}
	var types []*SchemaInfo
	var visit func(string)
	visit = func(t string) {
		ti := s.types[t]
		if t == "" || seen[t] || ti == nil {
			return
		}
		seen[t] = true
		types = append(types, ti)
		visit(ti.ElementType)
		for _, m := range ti.Members {
			visit(m.Type)
		}
		for _, v := range ti.Variants {
			visit(v.Type)
		}
	}
	visit(si.ArgType)
	visit(si.RetType)
	sort.SliceStable(types, func(i, j int) bool { return s.order[types[i].Name] < s.order[types[j].Name] })
	return json.Marshal(append([]*SchemaInfo{si}, types...))
}

func (s *Schema) helpEntry(name string) (*SchemaInfo, error) {
	if si, ok := s.Command(name); ok {
		return si, nil
	}
	if si, ok := s.Event(name); ok {
		return si, nil
	}
	e := &ValidationError{Msg: "unknown command or event " + strconv.Quote(name)}
	if s != nil {
		e.Suggestion = closest(name, slices.Concat(s.commands, s.events))
	}
	return nil, e
}

// List lists the command and event names, one per line under a
// "Commands:" and an "Events:" heading (the latter only when the schema
// has events).
func (s *Schema) List() string {
	var b strings.Builder
	b.WriteString("Commands:\n")
	for _, n := range s.Commands() {
		b.WriteString("  " + n + "\n")
	}
	if ev := s.Events(); len(ev) > 0 {
		b.WriteString("\nEvents:\n")
		for _, n := range ev {
			b.WriteString("  " + n + "\n")
		}
	}
	return b.String()
}

// ListJSON returns {"commands": [...], "events": [...]}, sorted.
func (s *Schema) ListJSON() []byte {
	v := struct {
		Commands []string `json:"commands"`
		Events   []string `json:"events"`
	}{s.Commands(), s.Events()}
	if v.Commands == nil {
		v.Commands = []string{}
	}
	if v.Events == nil {
		v.Events = []string{}
	}
	b, _ := json.Marshal(v) // strings always encode
	return b
}

// maxHelp bounds what Help writes. Types are described where they are
// used, so a server's schema that uses a type twice at each of 40 levels
// would be described in 2^40 lines, and one nested 20,000 deep in
// gigabytes of indent. QEMU 7.2's longest, blockdev-create's, is 156 KiB.
const maxHelp = 1 << 20

type helpWriter struct {
	s         *Schema
	full      bool // maxHelp was reached: write no more
	b         strings.Builder
	expanding map[string]bool // types being described, against recursion
	root      string          // the type of the arguments or event data
	rootDesc  string          // "blockdev-add's arguments"
}

// line writes text at an indent, wrapping it at helpWidth after ", "
// with continuation lines indented further.
func (h *helpWriter) line(indent int, text string) {
	if h.full {
		return
	}
	var out strings.Builder
	pad := strings.Repeat(" ", indent)
	cont := strings.Repeat(" ", indent+4)
	cur := pad
	for i, part := range strings.SplitAfter(text, ", ") {
		if i > 0 && len(cur)+len(strings.TrimRight(part, " ")) > helpWidth && strings.TrimSpace(cur) != "" {
			out.WriteString(strings.TrimRight(cur, " ") + "\n")
			cur = cont
		}
		cur += part
	}
	out.WriteString(strings.TrimRight(cur, " ") + "\n")
	if h.b.Len()+out.Len() > maxHelp {
		h.full = true
		return
	}
	h.b.WriteString(out.String())
}

// object writes "LABEL:" and an object's members, or "LABEL: none".
func (h *helpWriter) object(label string, si *SchemaInfo) {
	if si == nil || si.MetaType != "object" {
		h.member(0, label, nil, "")
		return
	}
	if len(si.Members) == 0 && si.Tag == "" {
		h.line(0, label+": none")
		return
	}
	h.line(0, label+":")
	h.root = si.Name
	h.expanding[si.Name] = true
	h.members(2, si)
	delete(h.expanding, si.Name)
}

// members writes an object's members at indent, then what each branch of
// a union adds.
func (h *helpWriter) members(indent int, si *SchemaInfo) {
	if h.full { // stop the walk too, not only the writing
		return
	}
	for i := range si.Members {
		m := &si.Members[i]
		h.member(indent, m.Name, m, m.Type)
	}
	if si.Tag == "" {
		return
	}
	type group struct {
		cases []string
		typ   string
	}
	var groups []*group
	byType := map[string]*group{}
	for _, v := range si.Variants {
		b := h.s.types[v.Type]
		if b == nil || len(b.Members) == 0 && b.Tag == "" {
			continue
		}
		g := byType[v.Type]
		if g == nil {
			g = &group{typ: v.Type}
			byType[v.Type] = g
			groups = append(groups, g)
		}
		g.cases = append(g.cases, v.Case)
	}
	for _, g := range groups {
		b := h.s.types[g.typ]
		h.line(indent, "when "+si.Tag+" is "+joinOrPlain(g.cases)+":")
		if h.expanding[g.typ] {
			h.line(indent+2, "(recursive)")
			continue
		}
		h.expanding[g.typ] = true
		h.members(indent+2, b)
		delete(h.expanding, g.typ)
	}
}

func joinOrPlain(parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

// member writes "name (optional, feature...): type" and, below it, the
// members of the objects the type holds.
func (h *helpWriter) member(indent int, name string, m *SchemaMember, typ string) {
	var notes []string
	if m != nil {
		if m.Optional() {
			notes = append(notes, "optional")
		}
		notes = append(notes, m.Features...)
	}
	head := name
	if len(notes) > 0 {
		head += " (" + strings.Join(notes, ", ") + ")"
	}
	obj, recursive := h.objectIn(typ)
	desc := h.typeName(typ)
	if recursive {
		if obj.Name == h.root {
			desc += " (the object as " + h.rootDesc + ")"
		} else {
			desc += " (recursive)"
		}
	}
	h.line(indent, head+": "+desc)
	if obj != nil && !recursive {
		h.expanding[obj.Name] = true
		h.members(indent+2, obj)
		delete(h.expanding, obj.Name)
	}
}

// objectIn returns the object whose members describe a type: the type, an
// array's element, or an alternate's object branch; recursive is set when
// that object is already being described.
func (h *helpWriter) objectIn(typ string) (obj *SchemaInfo, recursive bool) {
	si := h.s.types[typ]
	for depth := 0; si != nil && depth < 8; depth++ {
		switch si.MetaType {
		case "array":
			si = h.s.types[si.ElementType]
			continue
		case "alternate":
			si = h.s.objectBranch(si)
			continue
		case "object":
			if len(si.Members) == 0 && si.Tag == "" {
				return nil, false
			}
			return si, h.expanding[si.Name]
		}
		break
	}
	return nil, false
}

// typeName names a type for people: built-in names, "enum (a, b)",
// "array of T", "object", "T or U" for an alternate.
func (h *helpWriter) typeName(typ string) string {
	return h.typeNameDepth(typ, 0)
}

func (h *helpWriter) typeNameDepth(typ string, depth int) string {
	si := h.s.types[typ]
	if si == nil || depth > 8 {
		if typ == "" {
			return "none"
		}
		return typ
	}
	switch si.MetaType {
	case "builtin":
		return si.Name
	case "enum":
		vals := slices.Clone(enumValues(si))
		for i, m := range si.Members {
			if len(m.Features) > 0 && i < len(vals) {
				vals[i] += " [" + strings.Join(m.Features, ", ") + "]"
			}
		}
		return "enum (" + strings.Join(vals, ", ") + ")"
	case "array":
		return "array of " + h.typeNameDepth(si.ElementType, depth+1)
	case "object":
		if len(si.Members) == 0 && si.Tag == "" {
			return "object (empty)"
		}
		return "object"
	case "alternate":
		var parts []string
		for _, m := range si.Members {
			parts = append(parts, h.typeNameDepth(m.Type, depth+1))
		}
		return joinOrPlain(parts)
	}
	return si.MetaType
}
