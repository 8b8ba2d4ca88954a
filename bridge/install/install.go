// Package install writes, removes and lists the MCP server entries that run
// `bridge connect <server>` in agents' own configuration files: Claude
// Desktop, Claude Code, Cursor, VS Code and Windsurf.
//
// An edit changes only the bytes of the entry it adds, replaces or removes:
// every other server, key, comment and indentation stays as it was. The
// file is replaced atomically (a temporary file in the same directory and a
// rename), after a copy of the old content is saved in the backup
// directory. A file that cannot be parsed is never written.
package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxFileSize bounds the configuration files read. ~/.claude.json keeps
// project history and grows, but not to this.
const maxFileSize = 32 << 20

// keepBackups is how many backups of one file are kept.
const keepBackups = 10

// Installer edits client configuration files.
type Installer struct {
	// Env locates the files.
	Env Env
	// BackupDir receives a copy of each file before it is changed
	// (BRIDGE_HOME/backups). Empty means no backup.
	BackupDir string
	// Now stamps backups.
	Now func() time.Time
}

// Options are the choices of one install or uninstall.
type Options struct {
	// Project selects the project-scoped file.
	Project bool
	// Force replaces an entry of the same name (install), or removes one
	// that does not run bridge (uninstall).
	Force bool
}

// Result says what an edit did.
type Result struct {
	Target Target
	// Created is set when the file did not exist before.
	Created bool
	// Replaced is set when an entry of the same name was replaced.
	Replaced bool
	// Unchanged is set when the file already held exactly this entry.
	Unchanged bool
	// Backup is where the previous content was saved, if anywhere.
	Backup string
}

// Errors a caller can test for with errors.Is.
var (
	// ErrExists: an entry of that name exists; pass Force to replace it.
	ErrExists = errors.New("already exists")
	// ErrNotInstalled: no entry of that name.
	ErrNotInstalled = errors.New("not installed")
	// ErrNotBridge: the entry of that name does not run bridge.
	ErrNotBridge = errors.New("does not run bridge")
)

// FileError is a problem with one configuration file; the file was not
// changed.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string {
	return e.Path + ": " + e.Err.Error() + " (the file was not changed)"
}
func (e *FileError) Unwrap() error { return e.Err }

var serverName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidateServer checks a gateway server name.
func ValidateServer(name string) error {
	if !serverName.MatchString(name) {
		return fmt.Errorf("invalid server name %s: use letters, digits, '.', '_' and '-'", quote(name))
	}
	return nil
}

// Snippet returns the JSON a user would paste into the client's file to
// add the entry by hand.
func Snippet(c *Client, exe, server string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{c.Key: map[string]Entry{server: c.Entry(exe, server)}})
	return b.Bytes()
}

// Install adds the entry that runs `<exe> connect <server>` to c's file.
func (in *Installer) Install(c *Client, server, exe string, opts Options) (*Result, error) {
	if err := ValidateServer(server); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(exe) && !strings.HasPrefix(exe, `\\`) && !(len(exe) > 2 && exe[1] == ':') {
		return nil, fmt.Errorf("the bridge executable path %s is not absolute", quote(exe))
	}
	t, err := c.Target(in.Env, opts.Project)
	if err != nil {
		return nil, err
	}
	res := &Result{Target: t}
	entry := c.Entry(exe, server)
	return res, in.edit(t, &res.Backup, func(doc *document) error {
		servers := doc.servers()
		if servers == nil {
			res.Created = doc.created
			doc.edits = doc.layout.insertMember(doc.root, c.Key, map[string]Entry{server: entry})
			return nil
		}
		i := servers.find(server)
		if i < 0 {
			doc.edits = doc.layout.insertMember(servers, server, entry)
			return nil
		}
		if sameEntry(doc.src, servers.members[i].value, entry) {
			res.Unchanged = true
			return nil
		}
		if !opts.Force {
			return fmt.Errorf("%s already has a server named %s: pass --force to replace it: %w", c.Display, quote(server), ErrExists)
		}
		res.Replaced = true
		doc.edits = doc.layout.replaceValue(servers, i, entry)
		return nil
	})
}

// Uninstall removes the entry named server from c's file. Without
// opts.Force it removes only an entry that runs `bridge connect`.
func (in *Installer) Uninstall(c *Client, server string, opts Options) (*Result, error) {
	t, err := c.Target(in.Env, opts.Project)
	if err != nil {
		return nil, err
	}
	res := &Result{Target: t}
	return res, in.edit(t, &res.Backup, func(doc *document) error {
		if doc.created {
			return fmt.Errorf("%s has no configuration file at %s: %w", c.Display, t.Path, ErrNotInstalled)
		}
		servers := doc.servers()
		i := -1
		if servers != nil {
			i = servers.find(server)
		}
		if i < 0 {
			return fmt.Errorf("%s has no server named %s in %s: %w", c.Display, quote(server), t.Path, ErrNotInstalled)
		}
		if e := decodeEntry(doc.src, servers.members[i].value); !opts.Force && !e.runsBridge() {
			return fmt.Errorf("%s's server %s does not run `bridge connect`: pass --force to remove it anyway: %w", c.Display, quote(server), ErrNotBridge)
		}
		doc.edits = doc.layout.removeMember(servers, i)
		return nil
	})
}

// document is a configuration file being edited.
type document struct {
	client  *Client
	path    string
	src     []byte
	root    *node
	layout  layout
	created bool // the file did not exist
	edits   []edit
}

// servers returns the object holding the client's servers, or nil when the
// file has none.
func (d *document) servers() *node {
	i := d.root.find(d.client.Key)
	if i < 0 {
		return nil
	}
	return d.root.members[i].value
}

// edit reads t's file, lets change plan its edits, and writes the result,
// setting *backup to where the old content was saved.
func (in *Installer) edit(t Target, backup *string, change func(*document) error) error {
	path, err := resolveLinks(t.Path)
	if err != nil {
		return &FileError{Path: t.Path, Err: err}
	}
	doc := &document{client: t.Client, path: path}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		doc.created = true
	case err != nil:
		return &FileError{Path: t.Path, Err: err}
	case !info.Mode().IsRegular():
		return &FileError{Path: t.Path, Err: errors.New("not a regular file")}
	case info.Size() > maxFileSize:
		return &FileError{Path: t.Path, Err: fmt.Errorf("larger than %d MiB", maxFileSize>>20)}
	case info.Mode().Perm()&0o200 == 0:
		return &FileError{Path: t.Path, Err: errors.New("the file is read-only")}
	default:
		if doc.src, err = os.ReadFile(path); err != nil {
			return &FileError{Path: t.Path, Err: err}
		}
	}
	if err := doc.parse(); err != nil {
		return &FileError{Path: t.Path, Err: err}
	}
	if err := change(doc); err != nil {
		return err
	}
	if len(doc.edits) == 0 {
		return nil
	}
	out := apply(doc.src, doc.edits...)
	if _, err := parseDocument(bytes.TrimPrefix(out, []byte("\ufeff")), t.Client.JSONC); err != nil {
		// A bug here must never cost a user their configuration.
		return &FileError{Path: t.Path, Err: fmt.Errorf("internal error: the edited file would not parse (%v)", err)}
	}
	if doc.created {
		mode := fs.FileMode(0o600)
		if t.Scope == "project" {
			mode = 0o644
		}
		return in.write(t, path, out, mode, nil, backup)
	}
	return in.write(t, path, out, info.Mode().Perm(), info, backup)
}

// parse parses the file's content; an empty file counts as {}.
func (d *document) parse() error {
	src := d.src
	bom := []byte("\ufeff")
	body := bytes.TrimPrefix(src, bom)
	if len(bytes.TrimSpace(body)) == 0 {
		d.src = append(append([]byte(nil), src[:len(src)-len(body)]...), "{}\n"...)
		body = d.src[len(src)-len(body):]
	}
	root, err := parseDocument(body, d.client.JSONC)
	if err != nil {
		what := "JSON"
		if d.client.JSONC {
			what = "JSON with comments"
		}
		return fmt.Errorf("not valid %s: %w", what, err)
	}
	if root.kind != '{' {
		return errors.New("the file does not hold a JSON object")
	}
	if off := len(d.src) - len(body); off > 0 {
		shift(root, off)
	}
	d.root = root
	d.layout = newLayout(d.src, root)
	if s := d.servers(); s != nil && s.kind != '{' {
		return fmt.Errorf("%q is not an object; fix it by hand", d.client.Key)
	}
	return nil
}

// shift moves every offset in n by off (past a byte-order mark).
func shift(n *node, off int) {
	n.start += off
	n.end += off
	for i := range n.members {
		m := &n.members[i]
		m.keyStart += off
		if m.comma >= 0 {
			m.comma += off
		}
		shift(m.value, off)
	}
}

// sameEntry reports whether the value at n is exactly e.
func sameEntry(src []byte, n *node, e Entry) bool {
	var got map[string]any
	if err := json.Unmarshal(jsonOf(src, n), &got); err != nil {
		return false
	}
	b, _ := json.Marshal(e)
	var want map[string]any
	_ = json.Unmarshal(b, &want)
	return fmt.Sprint(got) == fmt.Sprint(want)
}

// jsonOf returns n's source as strict JSON. A JSONC value may hold
// comments and trailing commas, which are blanked out.
func jsonOf(src []byte, n *node) []byte {
	raw := src[n.start:n.end]
	if json.Valid(raw) {
		return raw
	}
	return stripJSONC(raw)
}

// stripJSONC replaces comments with spaces and drops trailing commas.
func stripJSONC(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	in := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case in:
			out = append(out, c)
			if c == '\\' && i+1 < len(raw) {
				i++
				out = append(out, raw[i])
			} else if c == '"' {
				in = false
			}
		case c == '"':
			in = true
			out = append(out, c)
		case c == '/' && i+1 < len(raw) && raw[i+1] == '/':
			for i < len(raw) && raw[i] != '\n' {
				i++
			}
			i--
		case c == '/' && i+1 < len(raw) && raw[i+1] == '*':
			end := bytes.Index(raw[i+2:], []byte("*/"))
			if end < 0 {
				i = len(raw)
			} else {
				i += 2 + end + 1
			}
		case c == ',':
			j := i + 1
			for j < len(raw) && strings.IndexByte(" \t\r\n", raw[j]) >= 0 {
				j++
			}
			if j < len(raw) && (raw[j] == '}' || raw[j] == ']') {
				continue
			}
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	// Comments removed above may have left a trailing comma.
	if !json.Valid(out) && !bytes.Equal(out, raw) {
		return stripJSONC(out)
	}
	return out
}

// write replaces path with data atomically, saving the old content first.
// old is the file's state when it was read, or nil for a new file; if the
// file changed since, nothing is written.
func (in *Installer) write(t Target, path string, data []byte, mode fs.FileMode, old fs.FileInfo, backup *string) error {
	dir := filepath.Dir(path)
	if old == nil {
		dirMode := fs.FileMode(0o700)
		if t.Scope == "project" {
			dirMode = 0o755
		}
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return &FileError{Path: t.Path, Err: err}
		}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return &FileError{Path: t.Path, Err: err}
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(name)
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return &FileError{Path: t.Path, Err: err}
	}
	if _, err := tmp.Write(data); err != nil {
		return &FileError{Path: t.Path, Err: err}
	}
	if err := tmp.Sync(); err != nil {
		return &FileError{Path: t.Path, Err: err}
	}
	if err := tmp.Close(); err != nil {
		return &FileError{Path: t.Path, Err: err}
	}
	if old != nil {
		now, err := os.Stat(path)
		if err != nil || now.Size() != old.Size() || !now.ModTime().Equal(old.ModTime()) {
			return &FileError{Path: t.Path, Err: errors.New("the file changed while bridge was editing it; run the command again")}
		}
		if *backup, err = in.backup(t, path); err != nil {
			return &FileError{Path: t.Path, Err: fmt.Errorf("saving a backup: %w", err)}
		}
	}
	if err := os.Rename(name, path); err != nil {
		return &FileError{Path: t.Path, Err: err}
	}
	ok = true
	return nil
}

// backup copies path into BackupDir as <client>-<scope>-<time>.json,
// mode 0600 (client files often hold other servers' API keys), and keeps
// the newest keepBackups of them.
func (in *Installer) backup(t Target, path string) (string, error) {
	if in.BackupDir == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(in.BackupDir, 0o700); err != nil {
		return "", err
	}
	now := time.Now
	if in.Now != nil {
		now = in.Now
	}
	prefix := t.Client.Name + "-" + t.Scope + "-"
	stamp := now().UTC().Format("20060102T150405.000000000Z")
	dst := filepath.Join(in.BackupDir, prefix+stamp+filepath.Ext(path))
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		return "", err
	}
	old, _ := filepath.Glob(filepath.Join(in.BackupDir, prefix+"*"))
	sort.Strings(old)
	for len(old) > keepBackups {
		_ = os.Remove(old[0])
		old = old[1:]
	}
	return dst, nil
}

// resolveLinks follows a symbolic link at p (dotfile managers link client
// files), so that the rename replaces the target and keeps the link.
func resolveLinks(p string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		dst, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dst) {
			dst = filepath.Join(filepath.Dir(p), dst)
		}
		p = dst
	}
	return "", errors.New("too many symbolic links")
}

func quote(s string) string { return strconv.Quote(s) }
