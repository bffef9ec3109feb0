package shell

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/qmpsh/qmpsh/pkg/qapi"
)

// complete returns Tab completions for the text before the cursor, line,
// and how many characters (runes) at its end they replace; each candidate
// is the whole replacement, so the editor inserts candidate[replaceLen:].
// The first word completes to command names and the given built-ins
// (such as "help", "quit", "transaction("); the words after a command to
// its arguments and their values, as qapi.Schema.CompleteArgs says; after
// "help", command and event names; after "transaction(", an action type
// (or ")" to close the block), then the action's arguments. Lines
// starting with '{', unterminated quotes and quoted words get nothing.
func complete(s *qapi.Schema, line string, builtins ...string) (candidates []string, replaceLen int) {
	if strings.HasPrefix(strings.TrimSpace(line), "{") {
		return nil, 0
	}
	words, partial, ok := completionWords(line)
	if !ok {
		return nil, 0
	}
	n := utf8.RuneCountInString(partial)
	if len(words) == 0 {
		return qapi.WithPrefix(partial, s.Commands(), builtins), n
	}
	if s == nil {
		return nil, 0
	}
	switch words[0] {
	case "help":
		if len(words) > 1 {
			return nil, 0
		}
		return qapi.WithPrefix(partial, s.Commands(), s.Events()), n
	case transactionOpen:
		if len(words) == 1 {
			types := s.ActionTypes()
			if types == nil {
				return nil, 0 // no transactions, or no types
			}
			return qapi.WithPrefix(partial, types, []string{transactionClose}), n
		}
		return s.CompleteActionArgs(words[1], keyValues(words[2:]), partial)
	}
	return s.CompleteArgs(words[0], keyValues(words[1:]), partial)
}

// keyValues splits the words that are key=value, skipping the others: a
// line being completed may have mistakes in it.
func keyValues(words []string) []qapi.KeyValue {
	var kvs []qapi.KeyValue
	for _, w := range words {
		if k, v, err := splitWord(w); err == nil {
			kvs = append(kvs, qapi.KeyValue{Key: k, Value: v})
		}
	}
	return kvs
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
