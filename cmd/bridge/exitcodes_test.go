package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge/install"
)

// TestExitCodesDocumented: the README's table is exitCodes, row by row.
func TestExitCodesDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, e := range exitCodes {
		rows = append(rows, fmt.Sprintf("| `%d` | %s |", e.Code, e.Meaning))
	}
	table := "| code | meaning |\n|---|---|\n" + strings.Join(rows, "\n") + "\n"
	if !strings.Contains(string(readme), table) {
		t.Errorf("README.md does not hold the exit code table; it should read:\n%s", table)
	}
}

func TestExitCodeFor(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want ExitCode
	}{
		{"nil", nil, ExitOK},
		{"plain", errors.New("boom"), ExitError},
		{"usage", usageError{errors.New("bad flag")}, ExitUsage},
		{"not logged in", fmt.Errorf("x: %w", auth.ErrNotLoggedIn), ExitAuth},
		{"login denied", auth.ErrLoginDenied, ExitAuth},
		{"uninstall of a missing entry", fmt.Errorf("no server named x: %w", install.ErrNotInstalled), ExitNotFound},
		{"not an auditor", &forbiddenError{msg: "no"}, ExitRefused},
		{"verify failed", &verifyFailedError{}, ExitVerifyFailed},
		{"decision differs", &expectError{}, ExitError},
	}
	for _, tt := range tests {
		if got := exitCodeFor(tt.err); got != tt.want {
			t.Errorf("%s: exit %d, want %d", tt.name, got, tt.want)
		}
	}
}
