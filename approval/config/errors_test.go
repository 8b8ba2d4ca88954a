package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden error reports under testdata/errors")

// TestErrorReports loads each broken configuration under testdata/errors
// and compares the whole error report with its .golden file: every problem
// at once, each as file:line: path.to.field: message, in the user's words.
func TestErrorReports(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "errors", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no broken configurations under testdata/errors (%v)", err)
	}
	env := testEnv(map[string]string{"WAREHOUSE_TOKEN": "wh-secret-1"}, nil)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Load(filepath.Base(file), data, env)
			if err == nil {
				t.Fatal("loaded a broken configuration")
			}
			got := err.Error() + "\n"
			for _, internal := range []string{"Go struct", "unmarshal", "time.Duration", "uint64", "reflect", "[]string"} {
				if strings.Contains(got, internal) {
					t.Errorf("the report speaks of Go internals (%q):\n%s", internal, got)
				}
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestErrorReports -update)", err)
			}
			if got != string(want) {
				t.Errorf("report differs from %s (run with -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}
