package policy

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGoldenSummary(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSummary(&b, loadTestPolicy(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.golden", b.Bytes())
}

func TestGoldenExplain(t *testing.T) {
	p := loadTestPolicy(t)
	cases := []struct {
		name string
		in   Input
	}{
		{"explain_approve.golden", call("github", "create_pr", `{"title":"Fix","repo":"prod-api"}`)},
		{"explain_fail_closed.golden", call("github", "merge_pr", `{"title":"no repo key"}`)},
		{"explain_deny_sql.golden", call("warehouse", "execute_sql", `{"query":"TRUNCATE audit"}`)},
		{"explain_default.golden", Input{User: "eve@evil.example", Groups: []string{"contractors"}, Server: "files", Method: MethodResourcesRead, Tool: "file:///etc/passwd"}},
		{"explain_invalid_args.golden", call("warehouse", "execute_sql", `{"query":"select 1","query":"drop table x"}`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteExplanation(&b, p.Explain(c.in)); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b.Bytes())
		})
	}
}
