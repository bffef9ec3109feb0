package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseBenchLine(t *testing.T) {
	name, metrics, ok := parseBenchLine("BenchmarkEvents/client/fake-2   \t 1000000\t      173.6 ns/op\t   5761234 events/s\t       0 B/op\t       0 allocs/op")
	if !ok || name != "BenchmarkEvents/client/fake" || metrics["events/s"] != 5761234 || metrics["ns/op"] != 173.6 {
		t.Errorf("got %q %v %v", name, metrics, ok)
	}
	if _, _, ok := parseBenchLine("--- SKIP: BenchmarkEvents/client/qemu"); ok {
		t.Error("a skip parsed as a result")
	}
}

// TestRatioTable checks the table against the layout README.md shows: a
// column as wide as its widest cell or its least width, right-aligned
// rates, and a skipped server.
func TestRatioTable(t *testing.T) {
	round := func(client, floor float64) map[string]map[string]float64 {
		return map[string]map[string]float64{
			"BenchmarkExecuteSequential/client/fake": {"ops/s": client},
			"BenchmarkExecuteSequential/floor/fake":  {"ops/s": floor},
		}
	}
	results := []map[string]map[string]float64{round(107200, 119300), round(105000, 119300), round(108000, 118000)}
	tbl, missed := ratioTable(results, map[string]bool{"BenchmarkExecuteSequential/client/qemu": true})
	var b strings.Builder
	tbl.write(&b)
	want := `| benchmark         | server |         client | floor                          | client/floor      | target | result |
|-------------------|--------|----------------|--------------------------------|-------------------|--------|--------|
| ExecuteSequential | fake   |   107.2k ops/s | floor 119.3k ops/s             | 0.90× [0.88–0.92] | ≥ 0.8  | meets  |
| ExecuteSequential | qemu   |        skipped | skipped                        |                   | ≥ 0.8  | -      |
`
	if b.String() != want || missed != 0 {
		t.Errorf("missed %d, table:\n%s\nwant:\n%s", missed, b.String(), want)
	}
}

func TestTableWidens(t *testing.T) {
	tbl := newTable(column{head: "a", width: 3}, column{head: "b", width: 2, right: true})
	tbl.add("long cell", "×")
	var b strings.Builder
	tbl.write(&b)
	want := "| a         |  b |\n|-----------|----|\n| long cell |  × |\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestRatios(t *testing.T) {
	// Round by round; a round whose denominator is missing or zero is
	// left out.
	r := ratios([]float64{10, 20, 30}, []float64{5, 0})
	if len(r) != 1 || r[0] != 2 {
		t.Errorf("ratios = %v, want [2]", r)
	}
	if got := ratioCell([]float64{1.2, 0.9, 1}); got != "1.00× [0.90–1.20]" {
		t.Errorf("ratioCell = %q", got)
	}
	if got := ratioCell(nil); got != "-" {
		t.Errorf("ratioCell(nil) = %q", got)
	}
}
