package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/approval/queue"
	"github.com/seed-3f9f6f16/bridge/auth"
)

// maxEditArgsBytes bounds the file given to --edit-args.
const maxEditArgsBytes = 1 << 20

// ApprovalsOptions are the flags and dependencies of `bridge approvals`.
type ApprovalsOptions struct {
	F       *Factory
	Gateway string
	Output  string // "table" or "json"
	// Action is the subcommand: list, show, approve, deny or watch.
	Action string
	ID     string
	// State filters list: a state, a comma-separated list, or "all".
	State    string
	Limit    int
	Comment  string
	EditArgs string // a file, or "-" for stdin
}

// NewCmdApprovals builds `bridge approvals` and its subcommands. runF
// replaces the work in tests.
func NewCmdApprovals(f *Factory, runF func(context.Context, *ApprovalsOptions) error) *cobra.Command {
	opts := &ApprovalsOptions{F: f}
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List, review and decide calls held for approval",
		Long: `Review the calls that the gateway holds for human approval, with your own
` + "`bridge login`" + ` (or BRIDGE_TOKEN). You see the requests you made and those
whose approver groups you belong to.

Exit codes: 0 done, 1 error, 2 bad usage, 3 no such request,
4 not logged in or token refused, 5 refused by the gateway (not pending,
expired, your own request, not an approver, already approved by you).`,
		Args: exactArgs(0),
	}
	cmd.PersistentFlags().StringVar(&opts.Gateway, "gateway", "", "the gateway's `URL` (default: the one bridge login saved)")
	cmd.PersistentFlags().StringVarP(&opts.Output, "output", "o", "table", "output format: table or json")

	run := func(action string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			opts.Action = action
			if len(args) > 0 {
				opts.ID = args[0]
			}
			if opts.Output != "table" && opts.Output != "json" {
				return usageError{fmt.Errorf("-o %q: want table or json", opts.Output)}
			}
			if opts.ID != "" && !queue.ValidID(opts.ID) {
				return usageError{fmt.Errorf("%q is not an approval id (they look like apr_abcdefghij)", opts.ID)}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return approvalsRun(cmd.Context(), opts)
		}
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List approval requests (pending ones by default)",
		Args:  exactArgs(0),
		RunE:  run("list"),
	}
	list.Flags().StringVar(&opts.State, "state", "pending", "pending, approved, denied, expired, cancelled, executed, a comma-separated list, or all")
	list.Flags().IntVar(&opts.Limit, "limit", 0, "show at most this many of the newest requests (default: the gateway's, 100)")
	show := &cobra.Command{
		Use:   "show <id>",
		Short: "Show one request: the call, its arguments and its reviews",
		Args:  exactArgs(1),
		RunE:  run("show"),
	}
	approve := &cobra.Command{
		Use:   "approve <id>",
		Short: "Approve a request, optionally with edited arguments",
		Long: `Approve a request. With --edit-args FILE the call runs with the JSON object in
FILE (or stdin for "-") instead of the requester's arguments, and the requester
is told who changed them.`,
		Args: exactArgs(1),
		RunE: run("approve"),
	}
	approve.Flags().StringVar(&opts.Comment, "comment", "", "a note for the requester and the audit log")
	approve.Flags().StringVar(&opts.EditArgs, "edit-args", "", "approve these arguments instead: a JSON object in FILE, or - for stdin")
	deny := &cobra.Command{
		Use:   "deny <id>",
		Short: "Deny a request; one denial ends it",
		Args:  exactArgs(1),
		RunE:  run("deny"),
	}
	deny.Flags().StringVar(&opts.Comment, "comment", "", "the reason, shown to the requester")
	watch := &cobra.Command{
		Use:   "watch",
		Short: "Print approval events as they happen, until interrupted",
		Long:  "Print approval events as they happen. With -o json, one JSON event per line.",
		Args:  exactArgs(0),
		RunE:  run("watch"),
	}
	cmd.AddCommand(list, show, approve, deny, watch)
	return cmd
}

func approvalsRun(ctx context.Context, opts *ApprovalsOptions) error {
	c, err := newApprovalsClient(opts)
	if err != nil {
		return err
	}
	switch opts.Action {
	case "list":
		return approvalsList(ctx, c, opts)
	case "show":
		r, err := c.get(ctx, opts.ID)
		if err != nil {
			return err
		}
		if opts.Output == "json" {
			return writeJSONOut(opts.F.IO.Out, r)
		}
		printRequest(opts.F.IO.Out, r, opts.F.Now())
		return nil
	case "approve", "deny":
		return approvalsDecide(ctx, c, opts)
	case "watch":
		return approvalsWatch(ctx, c, opts)
	}
	return usageError{fmt.Errorf("unknown action %q", opts.Action)}
}

// approvalsClient talks to the gateway's reviewer API with the user's token.
type approvalsClient struct {
	hc  *http.Client
	gw  string
	src auth.AccessTokenSource
}

func newApprovalsClient(opts *ApprovalsOptions) (*approvalsClient, error) {
	f := opts.F
	home, prof, gw, err := resolveClient(f, opts.Gateway)
	if err != nil {
		return nil, err
	}
	hc := f.HTTPClient()
	return &approvalsClient{hc: hc, gw: gw, src: tokenSourceFor(f, home, prof, gw, hc)}, nil
}

// do sends a request with the bearer token. A 401 invalidates the token
// and the request is tried once more with a fresh one. Any non-2xx
// answer becomes an *approvalsError.
func (c *approvalsClient) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var refused *approvalsError
	for {
		tok, err := c.src.Token(ctx)
		if err != nil {
			if refused != nil { // the retry after a 401 has no fresh token
				refused.hint = err.Error()
				return nil, refused
			}
			if errors.Is(err, auth.ErrNotLoggedIn) {
				return nil, err // it already says to run `bridge login`
			}
			return nil, fmt.Errorf("no usable token: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.gw+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok.Reveal())
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("the gateway %s is unreachable: %w", c.gw, unwrapURLError(err))
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		e := newApprovalsError(resp.StatusCode, data)
		if resp.StatusCode == http.StatusUnauthorized && refused == nil {
			refused = e
			c.src.Invalidate(ctx, tok)
			continue
		}
		return nil, e
	}
}

// unwrapURLError drops the method and URL that *url.Error adds.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// approvalsError is the gateway's refusal, mapped to an exit code.
type approvalsError struct {
	Status  int
	Code    string
	Message string
	hint    string // what to do about a refused token
}

func newApprovalsError(status int, body []byte) *approvalsError {
	e := &approvalsError{Status: status}
	var eb queue.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Message != "" {
		e.Code, e.Message = eb.Error.Code, sanitize(eb.Error.Message)
	} else {
		e.Message = fmt.Sprintf("the gateway answered HTTP %d", status)
	}
	return e
}

func (e *approvalsError) Error() string {
	if e.Status == http.StatusUnauthorized {
		hint := e.hint
		if hint == "" {
			hint = "run `bridge login`"
		}
		return "the gateway refused your token (" + e.Message + "): " + hint
	}
	return e.Message
}

// ExitCode implements exitCoder.
func (e *approvalsError) ExitCode() ExitCode {
	switch e.Status {
	case http.StatusUnauthorized:
		return ExitAuth
	case http.StatusNotFound:
		return ExitNotFound
	case http.StatusForbidden, http.StatusConflict:
		return ExitRefused
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return ExitUsage
	}
	return ExitError
}

// Is lets errors.Is(err, auth.ErrNotLoggedIn) hold for a refused token.
func (e *approvalsError) Is(target error) bool {
	return e.Status == http.StatusUnauthorized && target == auth.ErrNotLoggedIn
}

// getJSON fetches path into v, with a timeout.
func (c *approvalsClient) getJSON(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeBody(resp.Body, v)
}

func decodeBody(r io.Reader, v any) error {
	if err := json.NewDecoder(io.LimitReader(r, 64<<20)).Decode(v); err != nil {
		return errors.New("the gateway sent an unreadable answer")
	}
	return nil
}

func (c *approvalsClient) get(ctx context.Context, id string) (*queue.Request, error) {
	var r queue.Request
	if err := c.getJSON(ctx, "/v1/approvals/"+id, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func approvalsList(ctx context.Context, c *approvalsClient, opts *ApprovalsOptions) error {
	q := url.Values{}
	if opts.State != "" {
		q.Set("state", opts.State)
	}
	if opts.Limit > 0 {
		q.Set("limit", fmt.Sprint(opts.Limit))
	}
	path := "/v1/approvals"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var lr queue.ListResponse
	if err := c.getJSON(ctx, path, &lr); err != nil {
		return err
	}
	out := opts.F.IO.Out
	if opts.Output == "json" {
		return writeJSONOut(out, lr)
	}
	if len(lr.Approvals) == 0 {
		what := strings.ReplaceAll(opts.State, ",", " or ") + " "
		if opts.State == "" || opts.State == "all" {
			what = ""
		}
		fmt.Fprintf(opts.F.IO.ErrOut, "No %sapproval requests.\n", what)
		return nil
	}
	now := opts.F.Now()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tREQUESTER\tCALL\tRULE\tAPPROVALS\tEXPIRES")
	for _, r := range lr.Approvals {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", sanitize(r.ID), r.State, sanitize(requesterName(r)),
			sanitize(r.Server+"/"+r.Tool), sanitize(r.Rule), r.Approvals(), r.MinApprovals, relTime(r.Expires, now))
	}
	return tw.Flush()
}

func approvalsDecide(ctx context.Context, c *approvalsClient, opts *ApprovalsOptions) error {
	body := queue.DecisionBody{Decision: queue.Decision(opts.Action), Comment: opts.Comment}
	if opts.EditArgs != "" {
		args, err := readEditArgs(opts.F, opts.EditArgs)
		if err != nil {
			return err
		}
		body.EditedArgs = args
	}
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.do(ctx, http.MethodPost, "/v1/approvals/"+opts.ID+"/decision", data)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r queue.Request
	if err := decodeBody(resp.Body, &r); err != nil {
		return err
	}
	if opts.Output == "json" {
		return writeJSONOut(opts.F.IO.Out, &r)
	}
	call := sanitize(r.Server + "/" + r.Tool)
	out := opts.F.IO.Out
	switch r.State {
	case queue.StateApproved:
		fmt.Fprintf(out, "Approved %s: %s for %s may run once %s.\n", r.ID, call, sanitize(requesterName(&r)), validity(r.Expires, opts.F.Now()))
	case queue.StateDenied:
		fmt.Fprintf(out, "Denied %s: %s for %s.\n", r.ID, call, sanitize(requesterName(&r)))
	default:
		fmt.Fprintf(out, "Recorded your approval of %s (%s): %d of %d approvals; it needs more from other approvers.\n",
			r.ID, call, r.Approvals(), r.MinApprovals)
	}
	if r.EditedBy != nil && opts.Action == "approve" {
		fmt.Fprintf(out, "The call runs with the arguments edited by %s (%s).\n", sanitize(personName(*r.EditedBy)), short(r.EditedDigest))
	}
	return nil
}

// readEditArgs reads and checks the --edit-args file: one JSON object.
func readEditArgs(f *Factory, name string) (json.RawMessage, error) {
	var r io.Reader
	if name == "-" {
		r = f.IO.In
	} else {
		file, err := os.Open(name)
		if err != nil {
			return nil, usageError{fmt.Errorf("--edit-args: %w", err)}
		}
		defer file.Close()
		r = file
	}
	data, err := io.ReadAll(io.LimitReader(r, maxEditArgsBytes+1))
	if err != nil {
		return nil, usageError{fmt.Errorf("--edit-args: %w", err)}
	}
	if len(data) > maxEditArgsBytes {
		return nil, usageError{fmt.Errorf("--edit-args: larger than %d bytes", maxEditArgsBytes)}
	}
	data = bytes.TrimSpace(data)
	if !json.Valid(data) || len(data) == 0 || data[0] != '{' {
		return nil, usageError{errors.New("--edit-args: the file must hold one JSON object, the tool's arguments")}
	}
	return data, nil
}

// approvalsWatch prints events from the gateway's stream until ctx ends.
func approvalsWatch(ctx context.Context, c *approvalsClient, opts *ApprovalsOptions) error {
	resp, err := c.do(ctx, http.MethodGet, "/v1/approvals/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f := opts.F
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var data []byte
	announced := false
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case !announced && string(line) == ": connected":
			fmt.Fprintf(f.IO.ErrOut, "Watching approvals on %s (Ctrl-C to stop).\n", c.gw)
			announced = true
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
		case len(line) == 0 && len(data) > 0:
			if err := printEvent(f, opts.Output, data); err != nil {
				return err
			}
			data = data[:0]
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted: the normal end of watch
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the event stream broke: %w", unwrapURLError(err))
	}
	return errors.New("the gateway closed the event stream")
}

func printEvent(f *Factory, output string, data []byte) error {
	var ev queue.Event
	if err := json.Unmarshal(data, &ev); err != nil || ev.Request == nil {
		return errors.New("the gateway sent an unreadable event")
	}
	if output == "json" {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(f.IO.Out, "%s\n", b)
		return err
	}
	r := ev.Request
	now := f.Now()
	detail := ""
	switch ev.Type {
	case queue.EventCreated:
		detail = fmt.Sprintf("needs %d from %s, expires %s; approve: %s", r.MinApprovals,
			strings.Join(r.Approvers, ", "), relTime(r.Expires, now), queue.ApproveCommand(r.ID))
	case queue.EventReviewed, queue.EventApproved, queue.EventDenied:
		if n := len(r.Reviews); n > 0 {
			rv := r.Reviews[n-1]
			detail = fmt.Sprintf("%s by %s (%d/%d)", rv.Decision, personName(rv.Reviewer), r.Approvals(), r.MinApprovals)
		}
	case queue.EventCancelled, queue.EventRevoked:
		detail = r.CancelReason
	}
	_, err := fmt.Fprintf(f.IO.Out, "%s  %-9s  %s  %s → %s  %s\n", ev.Time.Local().Format("15:04:05"), ev.Type, r.ID,
		sanitize(requesterName(r)), sanitize(r.Server+"/"+r.Tool), sanitize(detail))
	return err
}

// printRequest prints one request for people.
func printRequest(w io.Writer, r *queue.Request, now time.Time) {
	p := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-14s %s\n", label+":", sanitize(fmt.Sprintf(format, a...)))
	}
	p("ID", "%s", r.ID)
	p("State", "%s (%d of %d approvals)", r.State, r.Approvals(), r.MinApprovals)
	p("Requester", "%s (%s)", requesterName(r), r.Requester.Subject)
	method := r.Method
	if method == "" {
		method = "tools/call"
	}
	p("Call", "%s/%s (%s)", r.Server, r.Tool, method)
	if r.Rule != "" {
		p("Rule", "%s (policy %s)", r.Rule, r.PolicyVersion)
	}
	p("Approvers", "%s", strings.Join(r.Approvers, ", "))
	p("Created", "%s", r.Created.Local().Format(time.RFC3339))
	p("Expires", "%s (%s)", r.Expires.Local().Format(time.RFC3339), relTime(r.Expires, now))
	if !r.DecidedAt.IsZero() {
		p("Decided", "%s", r.DecidedAt.Local().Format(time.RFC3339))
	}
	if !r.ExecutedAt.IsZero() {
		p("Executed", "%s", r.ExecutedAt.Local().Format(time.RFC3339))
	}
	if r.CancelReason != "" {
		p("Cancelled", "%s", r.CancelReason)
	}
	if r.Justification != "" {
		p("Justification", "%s", r.Justification)
	}
	fmt.Fprintf(w, "\nArguments, exactly as they will run (%s):\n", short(r.ArgsDigest))
	printArgs(w, r.Args)
	if r.EditedBy != nil {
		fmt.Fprintf(w, "\nEdited arguments, which run instead if policy still sends them to this approval (by %s, %s):\n", sanitize(personName(*r.EditedBy)), short(r.EditedDigest))
		printArgs(w, r.EditedArgs)
	}
	if len(r.Reviews) > 0 {
		fmt.Fprintln(w, "\nReviews:")
		for _, rv := range r.Reviews {
			line := fmt.Sprintf("%s  %-7s  %s", rv.Time.Local().Format(time.RFC3339), rv.Decision, personName(rv.Reviewer))
			if rv.Comment != "" {
				line += "  " + rv.Comment
			}
			if rv.ArgsDigest != r.EffectiveDigest() {
				line += "  (for earlier arguments)"
			}
			fmt.Fprintln(w, "  "+sanitize(line))
		}
	}
	if r.State == queue.StatePending {
		fmt.Fprintf(w, "\nApprove: %s\nDeny:    %s\n", queue.ApproveCommand(r.ID), queue.DenyCommand(r.ID))
	}
}

// printArgs pretty-prints arguments, each line made safe for a terminal.
func printArgs(w io.Writer, args json.RawMessage) {
	var b bytes.Buffer
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	if err := json.Indent(&b, args, "  ", "  "); err != nil {
		b.Reset()
		b.WriteString("(not valid JSON)")
	}
	for _, line := range strings.Split(b.String(), "\n") {
		fmt.Fprintln(w, "  "+sanitize(line))
	}
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// sanitize makes text from the gateway (written by requesters, agents and
// reviewers) safe to print on a terminal: control and format characters,
// such as escape sequences and bidirectional overrides, are shown escaped.
func sanitize(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafeRune(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }

func requesterName(r *queue.Request) string {
	if r.Requester.Email != "" {
		return r.Requester.Email
	}
	return r.Requester.Subject
}

func personName(p queue.Reviewer) string {
	if p.Email != "" {
		return p.Email
	}
	return p.Subject
}

// short abbreviates a digest for people.
// short abbreviates a digest for people: "hmac-sha256 1f2e3d4c5b6a…",
// or "1f2e3d4c5b6a…" when it names no algorithm.
func short(d string) string {
	kind, hex := "", d
	if i := strings.LastIndexByte(d, ':'); i >= 0 {
		kind, hex = strings.ReplaceAll(d[:i], ":", " ")+" ", d[i+1:]
	}
	if len(hex) > 12 {
		hex = hex[:12] + "…"
	}
	return kind + hex
}

// relTime says when t is relative to now: "in 14m", "3m ago".
func relTime(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case d > 0:
		return "in " + d.String()
	case d < 0:
		return (-d).String() + " ago"
	}
	return "now"
}

// validity says how long an approved call may still run, read after
// "may run once": "within the next 14m51s".
func validity(expires, now time.Time) string {
	d := expires.Sub(now).Round(time.Second)
	if d <= 0 {
		return "no longer: the approval has expired"
	}
	return "within the next " + d.String()
}
