package main

import "github.com/seed-3f9f6f16/bridge/bridge/install"

// listingView is one row of `bridge install --list -o json`.
type listingView struct {
	Client string `json:"client"`
	Scope  string `json:"scope"` // user or project
	// Status is configured (the file exists), present (the client is
	// installed, with no file yet), not found, or unreadable.
	Status  string       `json:"status"`
	Path    string       `json:"path"`
	Servers []serverView `json:"servers"` // entries that run bridge connect
	Others  int          `json:"other_servers"`
	Error   string       `json:"error,omitempty"`
}

// serverView is an entry that runs bridge; its env and headers, which may
// hold secrets, are never read.
type serverView struct {
	Name    string   `json:"name"`
	Command string   `json:"command"`
	Args    []string `json:"args"`
}

func listingViews(ls []install.Listing) []listingView {
	out := make([]listingView, 0, len(ls))
	for _, l := range ls {
		v := listingView{Client: l.Target.Client.Name, Scope: l.Target.Scope, Path: l.Target.Path, Others: l.Others, Servers: []serverView{}}
		switch {
		case l.Err != nil:
			v.Status, v.Error = "unreadable", l.Err.Error()
		case l.Exists:
			v.Status = "configured"
		case l.Present:
			v.Status = "present"
		default:
			v.Status = "not found"
		}
		for _, s := range l.Bridge {
			args := s.Args
			if args == nil {
				args = []string{}
			}
			v.Servers = append(v.Servers, serverView{Name: s.Name, Command: s.Command, Args: args})
		}
		out = append(out, v)
	}
	return out
}
