package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const exe = "/opt/bridge/bin/bridge"

var fixedNow = time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)

type fixture struct {
	t         *testing.T
	in        *Installer
	home, dir string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, home: t.TempDir(), dir: t.TempDir()}
	f.in = &Installer{
		Env:       Env{GOOS: "linux", Home: f.home, Dir: f.dir, Getenv: func(string) string { return "" }},
		BackupDir: filepath.Join(t.TempDir(), "backups"),
		Now:       func() time.Time { return fixedNow },
	}
	return f
}

func (f *fixture) client(name string) *Client {
	c, err := LookupClient(name)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// place copies testdata/<name> (raw content when name is "") to path.
func (f *fixture) place(path, name, raw string) []byte {
	f.t.Helper()
	data := []byte(raw)
	if name != "" {
		var err error
		if data, err = os.ReadFile(filepath.Join("testdata", name)); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		f.t.Fatal(err)
	}
	return data
}

func (f *fixture) target(c *Client, project bool) string {
	t, err := c.Target(f.in.Env, project)
	if err != nil {
		f.t.Fatal(err)
	}
	return t.Path
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// decode parses a client file (JSONC allowed) into plain Go values.
func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	var v map[string]any
	if err := json.Unmarshal(stripJSONC(data), &v); err != nil {
		t.Fatalf("result is not JSON: %v\n%s", err, data)
	}
	return v
}

// TestInstallFormats installs into each client's real file format and
// compares with golden files; everything else in the file must survive,
// and uninstall must restore the original bytes.
func TestInstallFormats(t *testing.T) {
	cases := []struct {
		name, client string
		project      bool
		fixture, raw string
		roundTrip    bool
	}{
		{name: "claude-desktop", client: "claude-desktop", fixture: "claude_desktop_config.json", roundTrip: true},
		{name: "claude-code-user", client: "claude-code", fixture: "claude.json", roundTrip: true},
		{name: "claude-code-project", client: "claude-code", project: true, fixture: "mcp.json", roundTrip: true},
		{name: "cursor-user", client: "cursor", fixture: "cursor_mcp.json", roundTrip: true},
		{name: "vscode-user-jsonc", client: "vscode", fixture: "vscode_mcp.json", roundTrip: true},
		{name: "windsurf", client: "windsurf", fixture: "mcp_config.json", roundTrip: true},
		{name: "compact", client: "claude-desktop", fixture: "compact.json", roundTrip: true},
		{name: "empty-object", client: "claude-desktop", raw: "{}\n"},
		{name: "empty-file", client: "cursor", raw: ""},
		{name: "no-servers-key", client: "vscode", raw: "{\n\t\"inputs\": []\n}\n"},
		{name: "byte-order-mark", client: "windsurf", raw: "\ufeff{\n  \"mcpServers\": {\n    \"x\": {\"command\": \"x\", \"args\": []}\n  }\n}\n", roundTrip: true},
		{name: "comment-after-last", client: "vscode", project: true, raw: "{\n  \"servers\": {\n    \"a\": {\"command\": \"a\"} // keep me\n  }\n}\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			c := f.client(tc.client)
			path := f.target(c, tc.project)
			orig := f.place(path, tc.fixture, tc.raw)
			res, err := f.in.Install(c, "warehouse", exe, Options{Project: tc.project})
			if err != nil {
				t.Fatal(err)
			}
			got := read(t, path)
			golden(t, tc.name+".json", got)
			parsed := orig
			if len(bytes.TrimSpace(orig)) == 0 {
				parsed = []byte("{}")
			}
			before, after := decode(t, parsed), decode(t, got)
			servers, _ := after[c.Key].(map[string]any)
			entry, _ := json.Marshal(servers["warehouse"])
			wantEntry, _ := json.Marshal(c.Entry(exe, "warehouse"))
			if !jsonEqual(entry, wantEntry) {
				t.Errorf("entry = %s, want %s", entry, wantEntry)
			}
			delete(servers, "warehouse")
			if len(servers) == 0 && before[c.Key] == nil {
				delete(after, c.Key)
			}
			if !reflect.DeepEqual(before, after) {
				t.Errorf("other content changed:\nbefore %v\nafter  %v", before, after)
			}
			if tc.fixture != "" && res.Backup == "" {
				t.Error("no backup was saved")
			}
			if res.Backup != "" && !bytes.Equal(read(t, res.Backup), orig) {
				t.Error("the backup does not hold the original content")
			}

			if _, err := f.in.Uninstall(c, "warehouse", Options{Project: tc.project}); err != nil {
				t.Fatal(err)
			}
			if tc.roundTrip && !bytes.Equal(read(t, path), orig) {
				t.Errorf("uninstall did not restore the original:\n%s\nwant\n%s", read(t, path), orig)
			}
		})
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func TestInstallCreatesMissingFile(t *testing.T) {
	for _, tc := range []struct {
		client  string
		project bool
		mode    os.FileMode
	}{
		{"claude-desktop", false, 0o600},
		{"claude-code", true, 0o644},
		{"cursor", true, 0o644},
		{"vscode", true, 0o644},
		{"windsurf", false, 0o600},
	} {
		t.Run(tc.client, func(t *testing.T) {
			f := newFixture(t)
			c := f.client(tc.client)
			res, err := f.in.Install(c, "demo", exe, Options{Project: tc.project})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Created || res.Backup != "" {
				t.Errorf("result = %+v, want Created and no backup", res)
			}
			got := read(t, res.Target.Path)
			if want := Snippet(c, exe, "demo"); !bytes.Equal(got, want) {
				t.Errorf("new file:\n%s\nwant\n%s", got, want)
			}
			fi, err := os.Stat(res.Target.Path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.mode {
				t.Errorf("mode = %v, want %v", fi.Mode().Perm(), tc.mode)
			}
		})
	}
}

// unchanged checks that a failed edit left the file exactly as it was and
// saved no backup.
func unchanged(t *testing.T, f *fixture, path string, orig []byte, mtime time.Time) {
	t.Helper()
	if got := read(t, path); !bytes.Equal(got, orig) {
		t.Errorf("the file changed:\n%s", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Error("the file was rewritten")
	}
	if entries, _ := os.ReadDir(f.in.BackupDir); len(entries) != 0 {
		t.Errorf("%d backups were written", len(entries))
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func mtime(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

func TestInstallRefusesBadFiles(t *testing.T) {
	cases := []struct {
		name, client, fixture, raw string
		want                       []string
	}{
		{name: "malformed", client: "claude-desktop", fixture: "malformed.json",
			want: []string{"not valid JSON", "line 5, column 64", `expected "," or "]"`, "the file was not changed"}},
		{name: "comment in strict JSON", client: "cursor", fixture: "commented.json",
			want: []string{"line 2, column 3", "comments are not allowed"}},
		{name: "trailing comma in strict JSON", client: "windsurf", raw: `{"mcpServers": {"a": {},}}`,
			want: []string{"trailing comma"}},
		{name: "unterminated JSONC comment", client: "vscode", raw: "{ /* never closed\n",
			want: []string{"not valid JSON with comments", "unterminated comment"}},
		{name: "not an object", client: "claude-code", raw: `["mcpServers"]`,
			want: []string{"does not hold a JSON object"}},
		{name: "servers not an object", client: "claude-desktop", raw: `{"mcpServers": []}`,
			want: []string{`"mcpServers" is not an object`}},
		{name: "trailing garbage", client: "claude-desktop", raw: "{}\n}",
			want: []string{"line 2, column 1", "after the end of the document"}},
		{name: "deeply nested", client: "claude-desktop", raw: `{"a":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + "}",
			want: []string{"nested more than"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			c := f.client(tc.client)
			path := f.target(c, false)
			orig := f.place(path, tc.fixture, tc.raw)
			mt := mtime(t, path)
			_, err := f.in.Install(c, "github", exe, Options{})
			if err == nil {
				t.Fatal("install succeeded")
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != path {
				t.Errorf("error %v is not a FileError for %s", err, path)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			unchanged(t, f, path, orig, mt)
		})
	}
}

func TestInstallReadOnlyFile(t *testing.T) {
	f := newFixture(t)
	c := f.client("claude-desktop")
	path := f.target(c, false)
	orig := f.place(path, "claude_desktop_config.json", "")
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	mt := mtime(t, path)
	_, err := f.in.Install(c, "github", exe, Options{Force: true})
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("error = %v, want read-only", err)
	}
	unchanged(t, f, path, orig, mt)
}

func TestInstallReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	f := newFixture(t)
	c := f.client("cursor")
	path := f.target(c, false)
	orig := f.place(path, "cursor_mcp.json", "")
	mt := mtime(t, path)
	if err := os.Chmod(filepath.Dir(path), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Dir(path), 0o755) })
	if _, err := f.in.Install(c, "github", exe, Options{}); err == nil {
		t.Fatal("install succeeded")
	}
	unchanged(t, f, path, orig, mt)
}

func TestInstallExistingEntry(t *testing.T) {
	f := newFixture(t)
	c := f.client("claude-code")
	path := f.target(c, false)
	orig := f.place(path, "claude.json", "")
	mt := mtime(t, path)

	// "github" is taken by another server: refused without --force.
	_, err := f.in.Install(c, "github", exe, Options{})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("error = %v, want ErrExists naming --force", err)
	}
	unchanged(t, f, path, orig, mt)

	res, err := f.in.Install(c, "github", exe, Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replaced {
		t.Errorf("result = %+v, want Replaced", res)
	}
	golden(t, "claude-code-force.json", read(t, path))

	// Installing the identical entry again changes nothing.
	mt = mtime(t, path)
	res, err = f.in.Install(c, "github", exe, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Unchanged || res.Backup != "" || !mtime(t, path).Equal(mt) {
		t.Errorf("reinstall rewrote the file: %+v", res)
	}
}

func TestUninstall(t *testing.T) {
	f := newFixture(t)
	c := f.client("cursor")
	path := f.target(c, false)
	orig := f.place(path, "cursor_mcp.json", "")
	mt := mtime(t, path)

	if _, err := f.in.Uninstall(c, "nope", Options{}); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("uninstall of a missing entry: %v, want ErrNotInstalled", err)
	}
	if _, err := f.in.Uninstall(c, "puppeteer", Options{}); !errors.Is(err, ErrNotBridge) {
		t.Errorf("uninstall of a foreign entry: %v, want ErrNotBridge", err)
	}
	unchanged(t, f, path, orig, mt)

	if _, err := f.in.Uninstall(c, "puppeteer", Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	golden(t, "cursor-uninstall-force.json", read(t, path))

	if _, err := f.in.Uninstall(f.client("windsurf"), "x", Options{}); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("uninstall without a file: %v, want ErrNotInstalled", err)
	}
	if _, err := os.Stat(f.target(f.client("windsurf"), false)); err == nil {
		t.Error("uninstall created a file")
	}
}

func TestInstallRejectsBadArguments(t *testing.T) {
	f := newFixture(t)
	if _, err := f.in.Install(f.client("claude-desktop"), "bad name", exe, Options{}); err == nil {
		t.Error("a server name with a space was accepted")
	}
	if _, err := f.in.Install(f.client("claude-desktop"), "x", "bridge", Options{}); err == nil {
		t.Error("a relative executable path was accepted")
	}
	var np *NoProjectScopeError
	if _, err := f.in.Install(f.client("windsurf"), "x", exe, Options{Project: true}); !errors.As(err, &np) {
		t.Errorf("--project for windsurf: %v", err)
	}
	var uc *UnknownClientError
	if _, err := LookupClient("emacs"); !errors.As(err, &uc) || !strings.Contains(err.Error(), "claude-desktop, claude-code") {
		t.Errorf("unknown client: %v", err)
	}
}

func TestInstallFollowsSymlink(t *testing.T) {
	f := newFixture(t)
	c := f.client("windsurf")
	path := f.target(c, false)
	real := filepath.Join(f.home, "dotfiles", "windsurf.json")
	f.place(real, "mcp_config.json", "")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, path); err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.Install(c, "github", exe, Options{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symbolic link was replaced: %v %v", fi.Mode(), err)
	}
	if !bytes.Contains(read(t, real), []byte(`"github"`)) {
		t.Error("the link's target was not edited")
	}
}

func TestBackupsArePrivateAndPruned(t *testing.T) {
	f := newFixture(t)
	c := f.client("claude-desktop")
	path := f.target(c, false)
	f.place(path, "claude_desktop_config.json", "")
	now := fixedNow
	f.in.Now = func() time.Time { now = now.Add(time.Second); return now }
	for i := range keepBackups + 3 {
		opts := Options{Force: true}
		if _, err := f.in.Install(c, "github", exe+string(rune('a'+i)), opts); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(f.in.BackupDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != keepBackups {
		t.Errorf("%d backups kept, want %d", len(entries), keepBackups)
	}
	for _, e := range entries {
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 || !strings.HasPrefix(e.Name(), "claude-desktop-user-") {
			t.Errorf("backup %s mode %v", e.Name(), fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(f.in.BackupDir); fi.Mode().Perm() != 0o700 {
		t.Errorf("backup directory mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestSnippet(t *testing.T) {
	c, _ := LookupClient("vscode")
	golden(t, "snippet-vscode.json", Snippet(c, `C:\Program Files\bridge\bridge.exe`, "github"))
}

func TestList(t *testing.T) {
	f := newFixture(t)
	desktop := f.client("claude-desktop")
	f.place(f.target(desktop, false), "claude_desktop_config.json", "")
	if _, err := f.in.Install(desktop, "github", exe, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.Install(desktop, "demo", exe, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.Install(f.client("vscode"), "demo", exe, Options{Project: true}); err != nil {
		t.Fatal(err)
	}
	f.place(f.target(f.client("cursor"), false), "malformed.json", "")

	var got []string
	for _, l := range f.in.List() {
		var names []string
		for _, s := range l.Bridge {
			names = append(names, s.Name+"="+s.BridgeServer())
		}
		line := l.Target.Client.Name + "/" + l.Target.Scope
		line += " present=" + boolStr(l.Present) + " exists=" + boolStr(l.Exists)
		line += " bridge=[" + strings.Join(names, ",") + "]"
		line += " others=" + string(rune('0'+l.Others))
		if l.Err != nil {
			line += " err"
		}
		got = append(got, line)
	}
	want := []string{
		"claude-desktop/user present=yes exists=yes bridge=[demo=demo,github=github] others=2",
		"claude-code/user present=no exists=no bridge=[] others=0",
		"cursor/user present=yes exists=yes bridge=[] others=0 err",
		"vscode/user present=no exists=no bridge=[] others=0",
		"vscode/project present=yes exists=yes bridge=[demo=demo] others=0",
		"windsurf/user present=no exists=no bridge=[] others=0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func boolStr(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func TestPaths(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	cases := []struct {
		goos, client string
		project      bool
		vars         map[string]string
		want         string
	}{
		{"darwin", "claude-desktop", false, nil, "/Users/a/Library/Application Support/Claude/claude_desktop_config.json"},
		{"linux", "claude-desktop", false, nil, "/home/a/.config/Claude/claude_desktop_config.json"},
		{"linux", "claude-desktop", false, map[string]string{"XDG_CONFIG_HOME": "/xdg"}, "/xdg/Claude/claude_desktop_config.json"},
		{"windows", "claude-desktop", false, map[string]string{"APPDATA": `C:\Users\a\AppData\Roaming`}, `C:\Users\a\AppData\Roaming\Claude\claude_desktop_config.json`},
		{"windows", "claude-desktop", false, nil, `C:\Users\a\AppData\Roaming\Claude\claude_desktop_config.json`},
		{"darwin", "claude-code", false, nil, "/Users/a/.claude.json"},
		{"linux", "claude-code", false, map[string]string{"CLAUDE_CONFIG_DIR": "/cfg/claude"}, "/cfg/claude/.claude.json"},
		{"windows", "claude-code", false, nil, `C:\Users\a\.claude.json`},
		{"linux", "claude-code", true, nil, "/src/proj/.mcp.json"},
		{"windows", "claude-code", true, nil, `C:\src\proj\.mcp.json`},
		{"darwin", "cursor", false, nil, "/Users/a/.cursor/mcp.json"},
		{"windows", "cursor", false, nil, `C:\Users\a\.cursor\mcp.json`},
		{"linux", "cursor", true, nil, "/src/proj/.cursor/mcp.json"},
		{"darwin", "vscode", false, nil, "/Users/a/Library/Application Support/Code/User/mcp.json"},
		{"linux", "vscode", false, nil, "/home/a/.config/Code/User/mcp.json"},
		{"windows", "vscode", false, map[string]string{"APPDATA": `D:\roam`}, `D:\roam\Code\User\mcp.json`},
		{"windows", "vscode", true, nil, `C:\src\proj\.vscode\mcp.json`},
		{"darwin", "windsurf", false, nil, "/Users/a/.codeium/windsurf/mcp_config.json"},
		{"windows", "windsurf", false, nil, `C:\Users\a\.codeium\windsurf\mcp_config.json`},
	}
	for _, tc := range cases {
		e := Env{GOOS: tc.goos, Getenv: getenv}
		switch tc.goos {
		case "darwin":
			e.Home, e.Dir = "/Users/a", "/src/proj"
		case "windows":
			e.Home, e.Dir = `C:\Users\a`, `C:\src\proj`
		default:
			e.Home, e.Dir = "/home/a", "/src/proj"
		}
		clear(env)
		for k, v := range tc.vars {
			env[k] = v
		}
		c, _ := LookupClient(tc.client)
		tg, err := c.Target(e, tc.project)
		if err != nil {
			t.Fatal(err)
		}
		if tg.Path != tc.want {
			t.Errorf("%s %s project=%v: %s, want %s", tc.goos, tc.client, tc.project, tg.Path, tc.want)
		}
	}
}

// TestParserAgreesWithEncodingJSON checks the strict parser accepts
// exactly what encoding/json accepts for a set of tricky inputs.
func TestParserAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":"\u00e9\"\\"}`, `{"a":[1,2,{"b":null}]}`, `{"a":-0.5e+10}`,
		`{"a":01}`, `{"a":1,}`, `{"a" 1}`, `{"a":"\x"}`, `{"a":tru}`, `{"a":[1 2]}`, `{"a":"` + "\t" + `"}`,
		`{"a":1}{}`, `{"a":.5}`, `{"a":1.}`, `{'a':1}`, `{"a":[,]}`, `{"a":[]}`, "{\"a\":1}\n",
	} {
		_, err := parseDocument([]byte(s), false)
		if (err == nil) != json.Valid([]byte(s)) {
			t.Errorf("%q: parser err=%v, encoding/json valid=%v", s, err, json.Valid([]byte(s)))
		}
	}
}

// FuzzInstall checks that whatever a file holds, install either refuses
// it or produces a file that parses, holds the entry, and keeps every
// other top-level member.
func FuzzInstall(f *testing.F) {
	for _, name := range []string{"claude_desktop_config.json", "claude.json", "vscode_mcp.json", "compact.json", "malformed.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, name == "vscode_mcp.json")
	}
	f.Add([]byte(`{"mcpServers":{"github":1}}`), false)
	f.Fuzz(func(t *testing.T, src []byte, jsonc bool) {
		c := &Client{Name: "x", Key: "mcpServers", JSONC: jsonc}
		doc := &document{client: c, src: src}
		if err := doc.parse(); err != nil {
			return
		}
		entry := c.Entry(exe, "github")
		servers := doc.servers()
		switch {
		case servers == nil:
			doc.edits = doc.layout.insertMember(doc.root, c.Key, map[string]Entry{"github": entry})
		case servers.find("github") >= 0:
			doc.edits = doc.layout.replaceValue(servers, servers.find("github"), entry)
		default:
			doc.edits = doc.layout.insertMember(servers, "github", entry)
		}
		out := apply(doc.src, doc.edits...)
		root, err := parseDocument(bytes.TrimPrefix(out, []byte("\ufeff")), jsonc)
		if err != nil {
			t.Fatalf("edited file does not parse: %v\n%q\n%q", err, src, out)
		}
		d2 := &document{client: c, src: out, root: root}
		s2 := d2.servers()
		if s2 == nil || s2.find("github") < 0 {
			t.Fatalf("entry missing after install:\n%q", out)
		}
		var keys []string
		for _, m := range doc.root.members {
			keys = append(keys, m.key)
		}
		var keys2 []string
		for _, m := range root.members {
			keys2 = append(keys2, m.key)
		}
		if servers == nil {
			keys = append(keys, c.Key)
		}
		if !reflect.DeepEqual(keys, keys2) {
			t.Fatalf("top-level keys %v became %v", keys, keys2)
		}
	})
}
