package qapi

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// KeyValue is one key=value argument as typed, split at its first '=' but
// with the value not interpreted yet: Schema.Build types it from the
// schema. Key may be dotted ("file.filename").
type KeyValue struct {
	Key   string
	Value string
}

// guessKVs types raw arguments with qmp-shell's guessing: the values by
// guessNode, arranged by their dotted keys as the schema's typing does.
// The result is nil when args is empty.
func guessKVs(args []KeyValue) (map[string]any, error) {
	if len(args) == 0 {
		return nil, nil
	}
	root, err := buildTree(args, false)
	if err != nil {
		return nil, err
	}
	v, err := guessNode("", root)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
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

// CheckKeys reports what is wrong with args' keys whatever a schema
// says: an empty segment in a dotted key (a.=1), a key set twice, a key
// used both as a value and as an object (a=1 a.b=2), nesting deeper than
// QEMU takes. Values are not looked at: how to read them is the
// schema's to say.
func CheckKeys(args []KeyValue) error {
	_, err := buildTree(args, false)
	return err
}

// maxKeyDepth bounds a dotted key's segments: QEMU's parser takes no
// deeper nesting, and a longer key would only cost time and memory.
const maxKeyDepth = 1024

func (root *node) add(kv KeyValue) error {
	segs := strings.Split(kv.Key, ".")
	if len(segs) > maxKeyDepth {
		return &SyntaxError{Token: kv.Key[:40] + "…", Msg: fmt.Sprintf("dotted key nests %d deep: QEMU takes at most %d levels", len(segs), maxKeyDepth)}
	}
	for _, s := range segs {
		if s == "" {
			return &SyntaxError{Token: kv.Key, Msg: "empty segment in dotted key"}
		}
	}
	n := root
	end := -1 // where the key up to this segment ends
	for i, s := range segs {
		end += 1 + len(s)
		k := n.kids[s]
		last := i == len(segs)-1
		switch {
		case k == nil:
			k = &node{key: kv.Key[:end]}
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

func conflict(key string, path []string) error {
	return &SyntaxError{
		Token: key,
		Msg:   strconv.Quote(strings.Join(path, ".")) + " is used both as a value and as an object",
	}
}
