package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed-3f9f6f16/bridge/approval/config"
)

func TestInit(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.yaml")
	if err := os.WriteFile(existing, []byte("mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantOut  bool   // the example on stdout
		wantFile string // the example in this file
		wantErr  string
		keep     string // this file keeps its content
	}{
		{name: "stdout", args: nil, wantOut: true},
		{name: "dash", args: []string{"-"}, wantOut: true},
		{name: "new file", args: []string{filepath.Join(dir, "gateway.yaml")}, wantFile: filepath.Join(dir, "gateway.yaml")},
		{name: "existing refused", args: []string{existing}, wantErr: "already exists: pass --force", keep: existing},
		{name: "existing forced", args: []string{existing, "--force"}, wantFile: existing},
		{name: "two files", args: []string{"a", "b"}, wantErr: "at most one FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, out, _ := testFactory()
			cmd := NewCmdInit(f, nil)
			cmd.SetArgs(tt.args)
			cmd.SetOut(out)
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tt.wantOut != bytes.Equal(out.Bytes(), config.Example()) {
				t.Errorf("stdout holds the example: %v, want %v", !tt.wantOut, tt.wantOut)
			}
			if tt.wantFile != "" {
				got, err := os.ReadFile(tt.wantFile)
				if err != nil || !bytes.Equal(got, config.Example()) {
					t.Errorf("%s does not hold the example (%v)", tt.wantFile, err)
				}
				if st, _ := os.Stat(tt.wantFile); st != nil && st.Mode().Perm()&0o077 != 0 && tt.name == "new file" {
					t.Errorf("mode %v, want 0600", st.Mode().Perm())
				}
			}
			if tt.keep != "" {
				if got, _ := os.ReadFile(tt.keep); string(got) != "mine\n" {
					t.Errorf("%s was changed to %q", tt.keep, got)
				}
			}
		})
	}
}
