package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/bridge/install"
)

func TestInstallFlags(t *testing.T) {
	cases := []struct {
		args    []string
		want    InstallOptions
		wantErr bool
	}{
		{args: []string{"claude-desktop", "github"}, want: InstallOptions{Client: "claude-desktop", Server: "github"}},
		{args: []string{"vscode", "demo", "--project", "--force"}, want: InstallOptions{Client: "vscode", Server: "demo", Project: true, Force: true}},
		{args: []string{"cursor", "demo", "--print"}, want: InstallOptions{Client: "cursor", Server: "demo", Print: true}},
		{args: []string{"--list"}, want: InstallOptions{List: true}},
		{args: []string{"--list", "cursor"}, wantErr: true},
		{args: []string{"--list", "--print"}, wantErr: true},
		{args: []string{"cursor"}, wantErr: true},
	}
	for _, tc := range cases {
		var got *InstallOptions
		cmd := NewCmdInstall(&Factory{}, func(_ context.Context, o *InstallOptions) error { got = o; return nil })
		cmd.SetArgs(tc.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		if tc.wantErr {
			if err == nil {
				t.Errorf("%v: no error", tc.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		got.F = nil
		if *got != tc.want {
			t.Errorf("%v: options %+v, want %+v", tc.args, *got, tc.want)
		}
	}

	var un *InstallOptions
	cmd := NewCmdUninstall(&Factory{}, func(_ context.Context, o *InstallOptions) error { un = o; return nil })
	cmd.SetArgs([]string{"cursor", "github", "--project"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if un.Client != "cursor" || un.Server != "github" || !un.Project {
		t.Errorf("uninstall options %+v", un)
	}
}

// installWorld runs the install commands against a fake home.
type installWorld struct {
	t        *testing.T
	out, err bytes.Buffer
	opts     *InstallOptions
	exe      string
}

func newInstallWorld(t *testing.T) *installWorld {
	w := &installWorld{t: t, exe: "/usr/local/bin/bridge"}
	f := &Factory{
		IO:         IOStreams{In: strings.NewReader(""), Out: &w.out, ErrOut: &w.err},
		Getenv:     func(string) string { return "" },
		Now:        func() time.Time { return doctorNow },
		Executable: func() (string, error) { return w.exe, nil },
	}
	w.opts = &InstallOptions{F: f, Installer: &install.Installer{
		Env:       install.Env{GOOS: "linux", Home: t.TempDir(), Dir: t.TempDir(), Getenv: func(string) string { return "" }},
		BackupDir: filepath.Join(t.TempDir(), "backups"),
		Now:       func() time.Time { return doctorNow },
	}}
	return w
}

func (w *installWorld) path(client string, project bool) string {
	c, _ := install.LookupClient(client)
	tg, err := c.Target(w.opts.Installer.Env, project)
	if err != nil {
		w.t.Fatal(err)
	}
	return tg.Path
}

func TestInstallRun(t *testing.T) {
	w := newInstallWorld(t)
	w.opts.Client, w.opts.Server = "claude-desktop", "github"
	if err := installRun(w.opts); err != nil {
		t.Fatal(err)
	}
	path := w.path("claude-desktop", false)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"command": "/usr/local/bin/bridge"`)) {
		t.Errorf("file:\n%s", data)
	}
	if !strings.Contains(w.err.String(), "Created "+path) || !strings.Contains(w.err.String(), "Restart Claude Desktop") {
		t.Errorf("stderr: %s", w.err.String())
	}

	// Again: nothing to do. With another binary: refused, then --force.
	w.err.Reset()
	if err := installRun(w.opts); err != nil || !strings.Contains(w.err.String(), "nothing to do") {
		t.Errorf("reinstall: %v %s", err, w.err.String())
	}
	w.exe = "/opt/other/bridge"
	if err := installRun(w.opts); !errors.Is(err, install.ErrExists) {
		t.Errorf("install over another entry: %v", err)
	}
	w.opts.Force = true
	w.err.Reset()
	if err := installRun(w.opts); err != nil || !strings.Contains(w.err.String(), "Replaced") || !strings.Contains(w.err.String(), "previous file is saved as") {
		t.Errorf("--force: %v %s", err, w.err.String())
	}

	w.err.Reset()
	if err := uninstallRun(w.opts); err != nil || !strings.Contains(w.err.String(), `Removed "github" from Claude Desktop`) {
		t.Errorf("uninstall: %v %s", err, w.err.String())
	}
	if err := uninstallRun(w.opts); !errors.Is(err, install.ErrNotInstalled) {
		t.Errorf("second uninstall: %v", err)
	}
}

func TestInstallRunErrors(t *testing.T) {
	w := newInstallWorld(t)
	var ue usageError
	for _, o := range []InstallOptions{
		{Client: "emacs", Server: "github"},
		{Client: "cursor", Server: "no spaces"},
		{Client: "windsurf", Server: "github", Project: true},
	} {
		o.F, o.Installer = w.opts.F, w.opts.Installer
		if err := installRun(&o); !errors.As(err, &ue) {
			t.Errorf("%+v: %v, want a usage error", o, err)
		}
	}
	// A malformed file is reported with its path and left alone.
	path := w.path("cursor", false)
	writeFile(t, path, "{ nope")
	w.opts.Client, w.opts.Server = "cursor", "github"
	err := installRun(w.opts)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "was not changed") {
		t.Errorf("malformed file: %v", err)
	}
}

func TestInstallPrint(t *testing.T) {
	w := newInstallWorld(t)
	w.opts.Client, w.opts.Server, w.opts.Print = "vscode", "github", true
	if err := installRun(w.opts); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"servers\": {\n    \"github\": {\n      \"type\": \"stdio\",\n      \"command\": \"/usr/local/bin/bridge\",\n      \"args\": [\n        \"connect\",\n        \"github\"\n      ]\n    }\n  }\n}\n"
	if w.out.String() != want {
		t.Errorf("--print:\n%s\nwant\n%s", w.out.String(), want)
	}
	if _, err := os.Stat(w.path("vscode", false)); err == nil {
		t.Error("--print wrote the file")
	}
}

func TestInstallList(t *testing.T) {
	w := newInstallWorld(t)
	for _, o := range []InstallOptions{
		{Client: "claude-desktop", Server: "github"},
		{Client: "claude-desktop", Server: "demo"},
		{Client: "vscode", Server: "demo", Project: true},
	} {
		o.F, o.Installer = w.opts.F, w.opts.Installer
		if err := installRun(&o); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, w.path("cursor", false), `{"mcpServers": {"other": {"command": "npx"}}}`)
	writeFile(t, w.path("windsurf", false), `{"mcpServers": `)
	w.opts.List = true
	if err := installListRun(w.opts); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(w.out.String(), w.opts.Installer.Env.Home, "$HOME")
	got = strings.ReplaceAll(got, w.opts.Installer.Env.Dir, "$PROJECT")
	checkGolden(t, filepath.Join("testdata", "install", "list.golden"), got)
	if !strings.Contains(w.err.String(), "warning: "+w.path("windsurf", false)) {
		t.Errorf("stderr: %s", w.err.String())
	}
}

func TestCompletion(t *testing.T) {
	for _, tc := range []struct{ shell, want string }{
		{"bash", "bash completion V2 for bridge"},
		{"zsh", "#compdef bridge"},
		{"fish", "complete -c bridge"},
		{"powershell", "Register-ArgumentCompleter"},
	} {
		out := runRoot(t, "completion", tc.shell)
		if !strings.Contains(out, tc.want) {
			t.Errorf("completion %s: no %q in %.200s", tc.shell, tc.want, out)
		}
	}
	// The first argument of install completes to the client names.
	out := runRoot(t, cobra.ShellCompRequestCmd, "install", "")
	for _, c := range install.ClientNames() {
		if !strings.Contains(out, c+"\n") {
			t.Errorf("install completion lacks %s:\n%s", c, out)
		}
	}
}

// runRoot runs the command tree with args and returns stdout. The new
// commands are added here in case the root does not register them yet.
func runRoot(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &Factory{IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, Getenv: func(string) string { return "" }, Now: func() time.Time { return doctorNow }}
	root := NewCmdRoot(f)
	have := map[string]bool{}
	for _, c := range root.Commands() {
		have[c.Name()] = true
	}
	for _, c := range []*cobra.Command{NewCmdInstall(f, nil), NewCmdUninstall(f, nil), NewCmdDoctor(f, nil), NewCmdMan(f, nil)} {
		if !have[c.Name()] {
			root.AddCommand(c)
		}
	}
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.Execute(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

func TestCompletionManPages(t *testing.T) {
	dir := t.TempDir()
	runRoot(t, "man", "--dir", dir)
	for _, page := range []string{"bridge.1", "bridge-install.1", "bridge-doctor.1", "bridge-login.1"} {
		data, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Errorf("%s: %v", page, err)
			continue
		}
		if !bytes.Contains(data, []byte(".TH \"BRIDGE\" \"1\" \"Nov 2026\"")) {
			t.Errorf("%s header: %.200s", page, data)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bridge-man.1")); err == nil {
		t.Error("the hidden man command has a page")
	}
}
