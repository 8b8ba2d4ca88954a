package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge/install"
)

// ExitCode is the process's exit status.
type ExitCode int

// Exit codes a script can rely on, the same in every command. exitCodes
// describes them; the README's table and `bridge --help` show it.
const (
	ExitOK           ExitCode = 0
	ExitError        ExitCode = 1   // the command failed, or policy test --expect saw another decision
	ExitUsage        ExitCode = 2   // bad flags or arguments
	ExitNotFound     ExitCode = 3   // what was named does not exist (or is not visible to you)
	ExitAuth         ExitCode = 4   // not logged in, the token was refused, or the login was denied or expired
	ExitRefused      ExitCode = 5   // the gateway understood and refused: no permission, separation of duties, already decided
	ExitVerifyFailed ExitCode = 6   // audit verify found the log broken (1: verify could not run)
	ExitCanceled     ExitCode = 130 // interrupted
)

// exitCodes is the documented table, in order.
var exitCodes = []struct {
	Code    ExitCode
	Meaning string
}{
	{ExitOK, "success"},
	{ExitError, "failure (the gateway unreachable, a file unreadable, …); `policy test --expect` got another decision"},
	{ExitUsage, "bad flags or arguments"},
	{ExitNotFound, "not found: no such approval request, no such entry to `uninstall`"},
	{ExitAuth, "not logged in, the token refused, or the login denied or expired"},
	{ExitRefused, "refused by the gateway: not an approver, auditor or pin admin, your own request, not pending, already decided"},
	{ExitVerifyFailed, "`audit verify` found the log broken"},
	{ExitCanceled, "interrupted"},
}

// exitCodesHelp renders exitCodes for `bridge --help`.
func exitCodesHelp() string {
	var b strings.Builder
	b.WriteString("Exit codes:\n")
	for _, e := range exitCodes {
		fmt.Fprintf(&b, "  %3d  %s\n", e.Code, strings.ReplaceAll(e.Meaning, "`", ""))
	}
	return strings.TrimRight(b.String(), "\n")
}

// exitCoder is an error that chooses the process's exit code.
type exitCoder interface {
	error
	ExitCode() ExitCode
}

// exitCodeFor maps an error to the exit code, in one place.
func exitCodeFor(err error) ExitCode {
	var ue usageError
	var ec exitCoder
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ec):
		return ec.ExitCode()
	case errors.Is(err, auth.ErrNotLoggedIn), errors.Is(err, auth.ErrLoginDenied), errors.Is(err, auth.ErrLoginExpired):
		return ExitAuth
	case errors.Is(err, install.ErrNotInstalled):
		return ExitNotFound
	case errors.Is(err, context.Canceled):
		return ExitCanceled
	}
	return ExitError
}

// checkOutput validates -o: text (or its old name, table) or json.
func checkOutput(v string) error {
	switch v {
	case "", "text", "table", "json":
		return nil
	}
	return usageError{fmt.Errorf("-o %q: want text or json", v)}
}
