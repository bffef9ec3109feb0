//go:build race

package qapi

// schemaRace is set when the race detector, which slows everything down
// several times over, is on: timing tests skip then.
const schemaRace = true
