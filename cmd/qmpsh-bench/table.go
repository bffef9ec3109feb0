package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// table is a Markdown table, as README.md shows the results: every cell
// padded to its column's width, so that the table reads as text too.
type table struct {
	cols []column
	rows [][]string
}

// column is a table's column: its heading, its least width (a longer
// heading or cell widens it) and whether cells are right-aligned.
type column struct {
	head  string
	width int
	right bool
}

func newTable(cols ...column) *table { return &table{cols: cols} }

// add adds a row, one cell per column.
func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// write writes the heading, the rule below it and the rows.
func (t *table) write(w io.Writer) {
	widths := make([]int, len(t.cols))
	for i, c := range t.cols {
		widths[i] = max(c.width, utf8.RuneCountInString(c.head))
		for _, row := range t.rows {
			if i < len(row) {
				widths[i] = max(widths[i], utf8.RuneCountInString(row[i]))
			}
		}
	}
	line := func(cell func(i int) string) {
		var b strings.Builder
		b.WriteString("|")
		for i := range t.cols {
			b.WriteString(cell(i))
			b.WriteString("|")
		}
		fmt.Fprintln(w, b.String())
	}
	pad := func(i int, s string) string {
		if t.cols[i].right {
			return fmt.Sprintf(" %*s ", widths[i], s)
		}
		return fmt.Sprintf(" %-*s ", widths[i], s)
	}
	line(func(i int) string { return pad(i, t.cols[i].head) })
	line(func(i int) string { return strings.Repeat("-", widths[i]+2) })
	for _, row := range t.rows {
		line(func(i int) string {
			if i < len(row) {
				return pad(i, row[i])
			}
			return pad(i, "")
		})
	}
}

// verdict is a result's last cell.
func verdict(ok bool) string {
	if ok {
		return "meets"
	}
	return "MISSES"
}
