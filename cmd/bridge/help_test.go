package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestHelpGolden renders the help of every command in the tree into
// testdata/help/<command path>.txt, so that a change to any help text, and a
// defect in one, shows in review. -update rewrites the files.
func TestHelpGolden(t *testing.T) {
	f, _, _ := testFactory()
	f.Getenv = func(string) string { return "" }
	f.LookupEnv = func(string) (string, bool) { return "", false }
	root := NewCmdRoot(f)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	want := map[string]bool{}
	walk(root, func(cmd *cobra.Command) {
		if cmd.Hidden {
			return
		}
		name := strings.ReplaceAll(cmd.CommandPath(), " ", "_") + ".txt"
		want[name] = true
		t.Run(cmd.CommandPath(), func(t *testing.T) {
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			if err := cmd.Help(); err != nil {
				t.Fatal(err)
			}
			helpDefects(t, cmd)
			golden(t, filepath.Join("help", name), out.String())
		})
	})
	// A golden file for a command that no longer exists is stale.
	files, _ := filepath.Glob(filepath.Join("testdata", "help", "*.txt"))
	for _, file := range files {
		if !want[filepath.Base(file)] {
			if *updateGolden {
				os.Remove(file)
				continue
			}
			t.Errorf("%s is the help of no command: delete it or run with -update", file)
		}
	}
}

// valueName is what a back-quoted word in a flag's usage must look like.
var valueName = regexp.MustCompile(`^[A-Z][A-Z0-9_:]*$`)

func walk(cmd *cobra.Command, f func(*cobra.Command)) {
	f(cmd)
	for _, c := range cmd.Commands() {
		walk(c, f)
	}
}

// helpDefects checks what a golden file would only show to a careful
// reader: every command says what it does, and no flag's value name was
// taken from a back-quoted word in its usage.
func helpDefects(t *testing.T, cmd *cobra.Command) {
	t.Helper()
	if strings.TrimSpace(cmd.Short) == "" {
		t.Errorf("%q has no Short description", cmd.CommandPath())
	}
	cmd.LocalFlags().VisitAll(func(fl *pflag.Flag) {
		// pflag takes the first back-quoted word of a usage as the flag's
		// value name: meant for `URL`, it turned "run `bridge login`"
		// into "--gateway bridge login".
		if name, _ := pflag.UnquoteUsage(fl); strings.Contains(fl.Usage, "`") && !valueName.MatchString(name) {
			t.Errorf("%s --%s: the back-quoted %q in the usage became the flag's value name; quote commands with ' or \"", cmd.CommandPath(), fl.Name, name)
		}
		if strings.Count(fl.Usage, "`") > 2 {
			t.Errorf("%s --%s: only the value name may be back-quoted", cmd.CommandPath(), fl.Name)
		}
	})
}
