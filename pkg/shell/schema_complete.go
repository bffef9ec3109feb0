package shell

import (
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Complete returns Tab completions for the text before the cursor, line,
// and how many characters (runes) at its end they replace; each candidate
// is the whole replacement, so the editor inserts candidate[replaceLen:].
// The positions are:
//
//   - the first word: command names, and the given built-ins (such as
//     "help", "quit", "transaction(");
//   - a word without '=' after a command: its argument names not yet
//     given, as "name=", or "name." for an object (both for an
//     alternate with an object branch); a dotted word descends into
//     object members ("file.driver=" after "file."), the members of a
//     union's branch once its discriminator is given (driver=file);
//   - a word "key=value": for an enum its values, for a boolean true and
//     false, for an alternate those of its branches (and null); the
//     candidates are values, replacing only the text after '='.
//
// After "help" it completes command and event names; after
// "transaction(" it completes an action as CompleteAction does. Lines
// starting with '{', unterminated quotes and quoted words get nothing.
func (s *Schema) Complete(line string, builtins ...string) (candidates []string, replaceLen int) {
	if strings.HasPrefix(strings.TrimSpace(line), "{") {
		return nil, 0
	}
	words, partial, ok := completionWords(line)
	if !ok {
		return nil, 0
	}
	if len(words) == 0 {
		var names []string
		if s != nil {
			names = s.commands
		}
		return prefixed(partial, names, builtins), runeLen(partial)
	}
	if s == nil {
		return nil, 0
	}
	switch words[0] {
	case "help":
		if len(words) > 1 {
			return nil, 0
		}
		return prefixed(partial, s.commands, s.events), runeLen(partial)
	case transactionOpen:
		return s.completeAction(words[1:], partial)
	}
	si, ok := s.Command(words[0])
	if !ok || !s.typed {
		return nil, 0
	}
	return s.completeArgs(si.ArgType, words[1:], partial)
}

// CompleteAction completes a line inside a `transaction(` block: the
// action type (or ")" to close the block), then its data's arguments as
// Complete does for a command's.
func (s *Schema) CompleteAction(line string) (candidates []string, replaceLen int) {
	if s == nil {
		return nil, 0
	}
	words, partial, ok := completionWords(line)
	if !ok {
		return nil, 0
	}
	if len(words) > 0 && words[0] == transactionOpen {
		words = words[1:]
	}
	return s.completeAction(words, partial)
}

func (s *Schema) completeAction(words []string, partial string) ([]string, int) {
	union := s.actionUnion()
	if union == nil {
		return nil, 0
	}
	if len(words) == 0 {
		return prefixed(partial, s.actionTypes(), []string{transactionClose}), runeLen(partial)
	}
	wrapper, _ := s.variant(union, words[0])
	if wrapper == nil {
		return nil, 0
	}
	if m, ok := memberNamed(wrapper.Members, "data"); ok {
		return s.completeArgs(m.Type, words[1:], partial)
	}
	return nil, 0
}

// completionWords splits the text before the cursor into its complete
// words and the word being typed (raw, "" after a blank). ok is false
// when the line cannot be completed: an unterminated quote, or quoting
// in the word being typed.
func completionWords(line string) (words []string, partial string, ok bool) {
	lx := lexer{s: line}
	for {
		for lx.pos < len(line) {
			r, size := utf8.DecodeRuneInString(line[lx.pos:])
			if !unicode.IsSpace(r) {
				break
			}
			lx.pos += size
		}
		start := lx.pos
		tok, more, err := lx.next()
		if err != nil {
			return nil, "", false
		}
		if !more {
			return words, "", true
		}
		if lx.pos == len(line) {
			if tok.quoted || line[start:] != tok.text {
				return nil, "", false
			}
			return words, tok.text, true
		}
		words = append(words, tok.text)
	}
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// prefixed returns the names of the lists that start with prefix, sorted
// and without duplicates.
func prefixed(prefix string, lists ...[]string) []string {
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

// completeArgs completes the arguments of an object type, after the
// complete words given.
func (s *Schema) completeArgs(argType string, given []string, partial string) ([]string, int) {
	var kvs []KeyValue
	for _, w := range given {
		if k, v, err := splitWord(w); err == nil {
			kvs = append(kvs, KeyValue{Key: k, Value: v})
		}
	}
	root, _ := buildTree(kvs, true)
	if key, prefix, isValue := strings.Cut(partial, "="); isValue {
		if strings.HasPrefix(prefix, "{") || strings.HasPrefix(prefix, "[") {
			return nil, 0
		}
		si, _ := s.resolve(argType, root, strings.Split(key, "."))
		if si == nil {
			return nil, 0
		}
		return prefixed(prefix, s.valueCandidates(si)), runeLen(prefix)
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
