package qapi

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

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

// closest returns the candidate nearest to word by edit distance (with
// adjacent transpositions, ignoring case and '-' versus '_'), or "" when
// none is near enough: within 1 edit for words under 4 characters, else
// within max(2, len/3). On a tie, the one that shares the longest start
// with word wins (query-statu is query-status cut short, not
// query-stats mistyped), then the first in sorted order.
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
	best, bestD, bestP := "", limit+1, 0
	for _, c := range cands {
		if c == word {
			continue
		}
		nc := norm(c)
		d := editDistance(w, nc, limit+1)
		if d > limit || d > bestD {
			continue
		}
		p := commonPrefix(w, nc)
		if d < bestD || p > bestP || p == bestP && c < best {
			best, bestD, bestP = c, d, p
		}
	}
	return best
}

// commonPrefix returns how many bytes a and b start with alike.
func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
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

// CheckEvent returns a *ValidationError, with the closest event name as
// its suggestion, when s knows the server's events and name is not one of
// them. It returns nil for a nil schema or one of command names only
// (a server without query-qmp-schema): there is nothing to check against.
func (s *Schema) CheckEvent(name string) error {
	if !s.HasTypes() {
		return nil
	}
	if _, ok := s.Event(name); ok {
		return nil
	}
	return &ValidationError{Msg: "unknown event " + strconv.Quote(name), Suggestion: closest(name, s.events)}
}
