package qapi

import (
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// WithPrefix returns the names of the lists that start with prefix,
// sorted and without duplicates: the candidates for a word being typed.
func WithPrefix(prefix string, lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, n := range l {
			if strings.HasPrefix(n, prefix) {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// CompleteArgs completes an argument of command, given the key=value
// arguments already typed and partial, the word being typed, and
// returns the candidates with how many characters (runes) at the end of
// partial they replace; each candidate is the whole replacement. A word
// without '=' completes to the argument names not yet given, as "name=",
// or "name." for an object (both for an alternate with an object
// branch); a dotted word descends into object members ("file.driver="
// after "file."), with the members of a union's branch once its
// discriminator is given (driver=file). A word "key=value" completes the
// value: an enum's values, true and false for a boolean, those of an
// alternate's branches (and null), replacing only the text after '='.
// Nothing is offered for a command the schema does not type.
func (s *Schema) CompleteArgs(command string, given []KeyValue, partial string) ([]string, int) {
	si, ok := s.Command(command)
	if !ok || !s.typed {
		return nil, 0
	}
	return s.completeArgs(si.ArgType, given, partial)
}

// CompleteActionArgs is CompleteArgs for the data of a transaction
// action of type typ.
func (s *Schema) CompleteActionArgs(typ string, given []KeyValue, partial string) ([]string, int) {
	union := s.actionUnion()
	if union == nil {
		return nil, 0
	}
	wrapper, _ := s.variant(union, typ)
	if wrapper == nil {
		return nil, 0
	}
	if m, ok := memberNamed(wrapper.Members, "data"); ok {
		return s.completeArgs(m.Type, given, partial)
	}
	return nil, 0
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// completeArgs completes the arguments of an object type, after the
// complete words given.
func (s *Schema) completeArgs(argType string, given []KeyValue, partial string) ([]string, int) {
	root, _ := buildTree(given, true)
	if key, prefix, isValue := strings.Cut(partial, "="); isValue {
		if strings.HasPrefix(prefix, "{") || strings.HasPrefix(prefix, "[") {
			return nil, 0
		}
		si, _ := s.resolve(argType, root, strings.Split(key, "."))
		if si == nil {
			return nil, 0
		}
		return WithPrefix(prefix, s.valueCandidates(si)), runeLen(prefix)
	}
	segs := strings.Split(partial, ".")
	obj, n := s.resolve(argType, root, segs[:len(segs)-1])
	obj = s.objectBranch(obj)
	if obj == nil {
		return nil, 0
	}
	parent := strings.Join(segs[:len(segs)-1], ".")
	prefix := segs[len(segs)-1]
	var fl flat
	s.flatten(obj, leafTag(n), &fl, 0)
	var out []string
	for _, m := range fl.members {
		if !strings.HasPrefix(m.Name, prefix) {
			continue
		}
		k := n.kid(m.Name)
		if k != nil && k.leaf {
			continue // given
		}
		si := s.types[m.Type]
		name := joinPath(parent, m.Name)
		if k == nil && (si == nil || si.MetaType != "object") {
			out = append(out, name+"=")
		}
		if s.objectBranch(si) != nil {
			out = append(out, name+".")
		}
	}
	sort.Strings(out)
	return slices.Compact(out), runeLen(partial)
}

// leafTag reports a union discriminator's value as given in n.
func leafTag(n *node) func(tag, typ string) (string, bool) {
	return func(tag, _ string) (string, bool) {
		k := n.kid(tag)
		if k == nil || !k.leaf {
			return "", false
		}
		return k.val, true
	}
}

// objectBranch returns the object an object or alternate type stands for
// in dotted keys, or nil.
func (s *Schema) objectBranch(si *SchemaInfo) *SchemaInfo {
	if si == nil {
		return nil
	}
	switch si.MetaType {
	case "object":
		return si
	case "alternate":
		for _, m := range si.Members {
			if b := s.types[m.Type]; b != nil && b.MetaType == "object" {
				return b
			}
		}
	}
	return nil
}

// resolve follows a dotted key's segments from an object type, with the
// union branches the given arguments select, to the type of its last
// segment and the given arguments under it (nil when none).
func (s *Schema) resolve(typ string, n *node, segs []string) (*SchemaInfo, *node) {
	si := s.types[typ]
	for _, seg := range segs {
		obj := s.objectBranch(si)
		if obj == nil {
			return nil, nil
		}
		var fl flat
		s.flatten(obj, leafTag(n), &fl, 0)
		m, ok := memberNamed(fl.members, seg)
		if !ok {
			return nil, nil
		}
		si = s.types[m.Type]
		n = n.kid(seg)
	}
	return si, n
}

// valueCandidates returns the values worth offering for a type.
func (s *Schema) valueCandidates(si *SchemaInfo) []string {
	switch si.MetaType {
	case "enum":
		return enumValues(si)
	case "builtin":
		switch si.JSONType {
		case "boolean":
			return []string{"false", "true"}
		case "null":
			return []string{"null"}
		}
	case "alternate":
		var out []string
		for _, m := range si.Members {
			if b := s.types[m.Type]; b != nil && b.MetaType != "alternate" {
				out = append(out, s.valueCandidates(b)...)
			}
		}
		return out
	}
	return nil
}
