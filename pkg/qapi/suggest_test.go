package qapi

import (
	"errors"
	"testing"
)

func TestSchemaClosest(t *testing.T) {
	cands := []string{"node-name", "name", "driver", "id", "if", "data"}
	for _, tc := range []struct{ word, want string }{
		{"nodename", "node-name"},
		{"node_name", "node-name"},
		{"Node-Name", "node-name"},
		{"drvier", "driver"}, // transposition
		{"dat", "data"},
		{"nme", "name"},
		{"ix", "id"}, // tie with "if": the first in sorted order
		{"x", ""},
		{"xyz", ""},
		{"", ""},
		{"data", ""}, // exact: nothing to suggest
		{"nodenamexyz", ""},
	} {
		if got := closest(tc.word, cands); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
	// On a tie, the longest shared start: a name cut short, not another
	// name mistyped.
	queries := []string{"query-stats", "query-status", "query-stats-schemas"}
	for _, tc := range []struct{ word, want string }{
		{"query-statu", "query-status"},
		{"query-stat", "query-stats"},
	} {
		if got := closest(tc.word, queries); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"abc", "abc", 0}, {"abc", "acb", 1}, {"kitten", "sitting", 3}, {"é", "e", 1},
	} {
		if got := editDistance(tc.a, tc.b, 10); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

func TestCheckEvent(t *testing.T) {
	s := testSchema(t)
	if err := s.CheckEvent("STOP"); err != nil {
		t.Errorf("CheckEvent(STOP) = %v", err)
	}
	err := s.CheckEvent("STPO")
	var ve *ValidationError
	if !errors.As(err, &ve) || err.Error() != `unknown event "STPO" (did you mean "STOP"?)` {
		t.Errorf("CheckEvent(STPO) = %v", err)
	}
	if err := FromCommands([]string{"stop"}).CheckEvent("ANY"); err != nil {
		t.Errorf("names-only CheckEvent = %v, want nil", err)
	}
	var none *Schema
	if err := none.CheckEvent("ANY"); err != nil {
		t.Errorf("nil CheckEvent = %v, want nil", err)
	}
}
