package cmd

import (
	"context"
	"fmt"

	"github.com/qmpsh/qmpsh/pkg/qapi"
	"github.com/qmpsh/qmpsh/pkg/qmp"
	"github.com/qmpsh/qmpsh/pkg/shell"
)

// checkEventNames fetches the schema of client's server and returns a
// usage error naming addr for the first of names the server does not
// emit, so that a misspelt --wait-event or --name fails at once instead
// of waiting for an event that never comes. Each target is checked on its
// own connection, since targets may run different QEMU versions. A server
// whose schema cannot be had (no query-qmp-schema) is not checked. The
// schema is returned, nil if none, for the caller to use again.
func checkEventNames(ctx context.Context, client *qmp.Client, addr string, names []string) (*qapi.Schema, error) {
	if len(names) == 0 {
		return nil, nil
	}
	s, _ := shell.FetchSchema(ctx, client)
	for _, n := range names {
		if err := s.CheckEvent(n); err != nil {
			return s, &ExitError{Code: ExitUsage, Err: fmt.Errorf("%s: %w", addr, err), Syntax: true}
		}
	}
	return s, nil
}
