package install

import (
	"path"
	"strings"
)

// Client is an agent whose MCP configuration bridge knows how to edit.
type Client struct {
	// Name is what users type: claude-desktop, claude-code, cursor, vscode
	// or windsurf.
	Name string
	// Display is the product's own name.
	Display string
	// Key is the top-level member holding the servers: "mcpServers", or
	// "servers" for VS Code.
	Key string
	// JSONC is set when the client reads its file as JSON with comments and
	// trailing commas (VS Code). Other clients' files must be strict JSON,
	// and a comment in one is reported as an error rather than written
	// back, since the client itself would fail to read it.
	JSONC bool
	// Project is the project-scoped file, relative to the project
	// directory, or "" when the client has none.
	Project string

	user     func(e Env) string   // the user-scoped file
	presence func(e Env) []string // paths whose existence shows the client is installed
	stdio    bool                 // entries carry "type": "stdio"
}

// Env is the part of the machine that decides where clients keep their
// configuration. Tests build it by hand; NewEnv reads the real one.
type Env struct {
	// GOOS is runtime.GOOS, or another in tests: "darwin", "windows" or
	// any Unix.
	GOOS string
	// Home is the user's home directory.
	Home string
	// Getenv looks up APPDATA, XDG_CONFIG_HOME and CLAUDE_CONFIG_DIR.
	Getenv func(string) string
	// Dir is the project directory for project-scoped files (the working
	// directory).
	Dir string
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

// join joins path elements with the separator of e.GOOS, so that Windows
// paths can be computed and tested on any host.
func (e Env) join(elem ...string) string {
	if e.GOOS != "windows" {
		return path.Join(elem...)
	}
	parts := make([]string, 0, len(elem))
	for i, p := range elem {
		p = strings.ReplaceAll(p, "/", `\`)
		if i > 0 {
			p = strings.TrimLeft(p, `\`)
		}
		if i < len(elem)-1 {
			p = strings.TrimRight(p, `\`)
		}
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, `\`)
}

// appConfigDir is where desktop applications keep per-user settings:
// ~/Library/Application Support on macOS, %APPDATA% on Windows and
// $XDG_CONFIG_HOME (default ~/.config) elsewhere.
func (e Env) appConfigDir() string {
	switch e.GOOS {
	case "darwin":
		return e.join(e.Home, "Library", "Application Support")
	case "windows":
		if d := e.getenv("APPDATA"); d != "" {
			return d
		}
		return e.join(e.Home, "AppData", "Roaming")
	}
	if d := e.getenv("XDG_CONFIG_HOME"); d != "" && path.IsAbs(d) {
		return d
	}
	return e.join(e.Home, ".config")
}

// claudeCodeDir is ~/.claude, or $CLAUDE_CONFIG_DIR when set.
func (e Env) claudeCodeDir() string {
	if d := e.getenv("CLAUDE_CONFIG_DIR"); d != "" {
		return d
	}
	return e.join(e.Home, ".claude")
}

// claudeCodeUserFile is ~/.claude.json, or .claude.json inside
// $CLAUDE_CONFIG_DIR when that is set.
func (e Env) claudeCodeUserFile() string {
	if d := e.getenv("CLAUDE_CONFIG_DIR"); d != "" {
		return e.join(d, ".claude.json")
	}
	return e.join(e.Home, ".claude.json")
}

// Clients lists every supported client, in the order `--list` shows them.
func Clients() []*Client {
	return []*Client{
		{
			Name: "claude-desktop", Display: "Claude Desktop", Key: "mcpServers",
			user:     func(e Env) string { return e.join(e.appConfigDir(), "Claude", "claude_desktop_config.json") },
			presence: func(e Env) []string { return []string{e.join(e.appConfigDir(), "Claude")} },
		},
		{
			Name: "claude-code", Display: "Claude Code", Key: "mcpServers", Project: ".mcp.json", stdio: true,
			user:     func(e Env) string { return e.claudeCodeUserFile() },
			presence: func(e Env) []string { return []string{e.claudeCodeUserFile(), e.claudeCodeDir()} },
		},
		{
			Name: "cursor", Display: "Cursor", Key: "mcpServers", Project: ".cursor/mcp.json",
			user:     func(e Env) string { return e.join(e.Home, ".cursor", "mcp.json") },
			presence: func(e Env) []string { return []string{e.join(e.Home, ".cursor")} },
		},
		{
			Name: "vscode", Display: "VS Code", Key: "servers", JSONC: true, Project: ".vscode/mcp.json", stdio: true,
			user:     func(e Env) string { return e.join(e.appConfigDir(), "Code", "User", "mcp.json") },
			presence: func(e Env) []string { return []string{e.join(e.appConfigDir(), "Code", "User")} },
		},
		{
			Name: "windsurf", Display: "Windsurf", Key: "mcpServers",
			user:     func(e Env) string { return e.join(e.Home, ".codeium", "windsurf", "mcp_config.json") },
			presence: func(e Env) []string { return []string{e.join(e.Home, ".codeium", "windsurf")} },
		},
	}
}

// ClientNames returns the names users type, for help text and completion.
func ClientNames() []string {
	var names []string
	for _, c := range Clients() {
		names = append(names, c.Name)
	}
	return names
}

// LookupClient returns the client called name.
func LookupClient(name string) (*Client, error) {
	for _, c := range Clients() {
		if c.Name == name {
			return c, nil
		}
	}
	return nil, &UnknownClientError{Name: name}
}

// UnknownClientError names a client bridge does not support.
type UnknownClientError struct{ Name string }

func (e *UnknownClientError) Error() string {
	return "unknown client " + quote(e.Name) + ": want one of " + strings.Join(ClientNames(), ", ")
}

// Entry is the MCP server entry bridge writes. Its field order is the
// order in the file.
type Entry struct {
	Type    string   `json:"type,omitempty"`
	Command string   `json:"command"`
	Args    []string `json:"args"`
}

// Entry returns the entry that runs `<exe> connect <server>`.
func (c *Client) Entry(exe, server string) Entry {
	e := Entry{Command: exe, Args: []string{"connect", server}}
	if c.stdio {
		e.Type = "stdio"
	}
	return e
}

// Target is one configuration file of one client.
type Target struct {
	Client *Client
	// Scope is "user" or "project".
	Scope string
	// Path is the file's path.
	Path string
}

// Target returns the file `bridge install` edits for c: the user-scoped
// one, or with project the project-scoped one under e.Dir.
func (c *Client) Target(e Env, project bool) (Target, error) {
	if !project {
		return Target{Client: c, Scope: "user", Path: c.user(e)}, nil
	}
	if c.Project == "" {
		return Target{}, &NoProjectScopeError{Client: c.Name}
	}
	return Target{Client: c, Scope: "project", Path: e.join(e.Dir, c.Project)}, nil
}

// NoProjectScopeError reports --project for a client that has no
// project-scoped configuration.
type NoProjectScopeError struct{ Client string }

func (e *NoProjectScopeError) Error() string {
	return e.Client + " has no project-scoped configuration; drop --project"
}
