package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
)

// Server is one MCP server entry found in a client's file.
type Server struct {
	Name    string
	Command string
	Args    []string
}

// decodeEntry reads the command and arguments of the entry at n; other
// fields (env, headers, …) are never read, since they may hold secrets.
func decodeEntry(src []byte, n *node) Server {
	var e struct {
		Command string   `json:"command"`
		Args    []string `json:"args"`
	}
	_ = json.Unmarshal(jsonOf(src, n), &e)
	return Server{Command: e.Command, Args: e.Args}
}

// runsBridge reports whether the entry runs `bridge connect <server>`.
func (s Server) runsBridge() bool { return s.BridgeServer() != "" }

// BridgeServer returns the gateway server the entry connects to, or "" when
// it does not run `bridge connect`.
func (s Server) BridgeServer() string {
	if len(s.Args) < 2 || s.Args[0] != "connect" || s.Command == "" {
		return ""
	}
	return s.Args[len(s.Args)-1]
}

// Listing is what one client file holds.
type Listing struct {
	Target Target
	// Present is set when the client appears to be installed.
	Present bool
	// Exists is set when the file exists.
	Exists bool
	// Bridge are the entries that run `bridge connect`, by name.
	Bridge []Server
	// Others counts the other servers.
	Others int
	// Err is set when the file cannot be read or parsed.
	Err error
}

// List reports every client's user-scoped file, and the project-scoped
// files that exist in Env.Dir.
func (in *Installer) List() []Listing {
	var out []Listing
	for _, c := range Clients() {
		u, _ := c.Target(in.Env, false)
		l := in.list(u)
		for _, p := range c.presence(in.Env) {
			if _, err := os.Stat(p); err == nil {
				l.Present = true
			}
		}
		out = append(out, l)
		if c.Project != "" && in.Env.Dir != "" {
			p, _ := c.Target(in.Env, true)
			if _, err := os.Stat(p.Path); err == nil {
				pl := in.list(p)
				pl.Present = true
				out = append(out, pl)
			}
		}
	}
	return out
}

func (in *Installer) list(t Target) Listing {
	l := Listing{Target: t}
	data, err := os.ReadFile(t.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return l
	}
	l.Exists = true
	if err != nil {
		l.Err = err
		return l
	}
	doc := &document{client: t.Client, path: t.Path, src: data}
	if err := doc.parse(); err != nil {
		l.Err = fmt.Errorf("%s: %w", t.Path, err)
		return l
	}
	servers := doc.servers()
	if servers == nil {
		return l
	}
	for _, m := range servers.members {
		s := decodeEntry(doc.src, m.value)
		s.Name = m.key
		if s.runsBridge() {
			l.Bridge = append(l.Bridge, s)
		} else {
			l.Others++
		}
	}
	sort.Slice(l.Bridge, func(i, j int) bool { return l.Bridge[i].Name < l.Bridge[j].Name })
	return l
}
