package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/auth"
)

// verifyFailedError reports a log that failed verification.
type verifyFailedError struct{ brk *audit.Break }

func (e *verifyFailedError) Error() string {
	return fmt.Sprintf("the audit log does not verify: first broken record is %d (%s)", e.brk.Seq, e.brk.Reason)
}

// ExitCode implements exitCoder.
func (e *verifyFailedError) ExitCode() ExitCode { return ExitVerifyFailed }

// forbiddenError is the gateway refusing a caller who is not an auditor.
type forbiddenError struct{ msg string }

func (e *forbiddenError) Error() string { return "the gateway refused: " + e.msg }

// ExitCode implements exitCoder.
func (e *forbiddenError) ExitCode() ExitCode { return ExitRefused }

// AuditFilterFlags are the record filters of list, export and tail.
type AuditFilterFlags struct {
	User, Server, Tool, Decision, Session, Kind string
	Since, Until                                string // RFC 3339, a date, or a duration back from now
	Limit                                       int
}

// AuditOptions are the flags and dependencies of `bridge audit …`.
type AuditOptions struct {
	F       *Factory
	Command string // list, show, replay, export, verify or tail
	Arg     string // show: a seq or approval id; replay: a session id

	Gateway   string
	DB        string // read this bbolt file instead of the gateway
	PublicKey string // verify: PEM Ed25519 public key file
	Head      string // verify: a file of signed heads from a witness, or "-" for stdin
	Output    string // "" (text) or "json"
	Format    string // export: jsonl or csv
	Follow    bool   // tail -f
	Lines     int    // tail -n
	Filter    AuditFilterFlags
	// LockTimeout bounds the wait for the --db file's lock; 0 means the
	// audit package's default. Not a flag.
	LockTimeout time.Duration
}

// NewCmdAudit builds `bridge audit` and its subcommands. runF replaces the
// work in tests.
func NewCmdAudit(f *Factory, runF func(context.Context, *AuditOptions) error) *cobra.Command {
	// The persistent flags; each subcommand copies them into its own
	// options when it runs.
	common := &AuditOptions{F: f}
	cmd := &cobra.Command{
		Use:   "audit <command>",
		Short: "Read, export, replay and verify the gateway's audit log",
		Long: `Read the gateway's tamper-evident audit log. By default bridge asks the gateway
(GET /v1/audit/…) with your own login (or BRIDGE_TOKEN); only members of an
auditors group (audit.auditors in the gateway configuration) may read it.

With --db PATH bridge reads the gateway's bbolt file directly instead. That
works only while the gateway is stopped (the running gateway holds the file's
lock, and a reader holding it keeps the gateway from starting): use it for
offline checks and on copies. --public-key authenticates signed checkpoints
in such a check.

Times (--since, --until) are RFC 3339 (2026-03-14T09:00:00Z), a date
(2026-03-14, UTC) or a duration back from now (24h, 90m).

Exit codes: 0 done, 1 error, 2 bad usage, 4 not logged in or token refused,
5 not an auditor, 6 verify found the log broken.`,
		Args: exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return usageError{errors.New("missing command: list, show, replay, export, verify or tail")}
		},
	}
	cmd.PersistentFlags().StringVar(&common.Gateway, "gateway", "", "the gateway's `URL` (default: the one bridge login saved)")
	cmd.PersistentFlags().StringVar(&common.DB, "db", "", "read this bbolt file directly (only while the gateway is stopped)")

	// sub returns the options of a subcommand named name and sets c to run
	// with them.
	sub := func(c *cobra.Command, name string) *AuditOptions {
		opts := &AuditOptions{F: f}
		c.RunE = func(c *cobra.Command, args []string) error {
			opts.Command, opts.Gateway, opts.DB = name, common.Gateway, common.DB
			if len(args) > 0 {
				opts.Arg = args[0]
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return auditRun(c.Context(), opts)
		}
		return opts
	}
	output := func(c *cobra.Command, opts *AuditOptions, help string) {
		c.Flags().StringVarP(&opts.Output, "output", "o", "", help)
	}
	filters := func(c *cobra.Command, opts *AuditOptions) {
		fl := c.Flags()
		fl.StringVar(&opts.Filter.User, "user", "", "only records of this user (subject, or email in any case)")
		fl.StringVar(&opts.Filter.Server, "server", "", "only records of this upstream server")
		fl.StringVar(&opts.Filter.Tool, "tool", "", "only records of this tool")
		fl.StringVar(&opts.Filter.Decision, "decision", "", "only records with this policy decision: allow, deny or approve")
		fl.StringVar(&opts.Filter.Session, "session", "", "only records of this session")
		fl.StringVar(&opts.Filter.Kind, "kind", "", "only records of this kind, such as request or approval_reviewed")
		fl.StringVar(&opts.Filter.Since, "since", "", "only records at or after this time (RFC 3339, date or duration such as 24h)")
		fl.StringVar(&opts.Filter.Until, "until", "", "only records before this time (RFC 3339, date or duration)")
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the newest records that match the filters",
		Args:  exactArgs(0),
	}
	o := sub(list, "list")
	filters(list, o)
	list.Flags().IntVar(&o.Filter.Limit, "limit", 100, "show at most this many of the newest matches (0: as many as the source allows)")
	output(list, o, "output format: json")

	show := &cobra.Command{
		Use:   "show <seq|approval-id>",
		Short: "Show one record by its seq, or every record of an approval",
		Args:  exactArgs(1),
	}
	output(show, sub(show, "show"), "output format: json")

	replay := &cobra.Command{
		Use:   "replay <session>",
		Short: "Replay a session as a readable transcript, in time order",
		Long: `Print a session as a transcript: who, what was asked, what policy said, who
approved, what came back and what was masked. -o json prints its records.`,
		Args: exactArgs(1),
	}
	output(replay, sub(replay, "replay"), "output format: json")

	export := &cobra.Command{
		Use:   "export --format jsonl|csv",
		Short: "Export the matching records for a SIEM, oldest first, to stdout",
		Long: `Stream the matching records to stdout, oldest first. jsonl writes each
record's stored form, hash included, one per line; csv writes a header row and
guards cells against spreadsheet formulas (use jsonl for an exact copy).`,
		Args: exactArgs(0),
	}
	o = sub(export, "export")
	export.Flags().StringVar(&o.Format, "format", "", "jsonl or csv (required)")
	filters(export, o)
	export.Flags().IntVar(&o.Filter.Limit, "limit", 0, "export at most this many records (0: all)")

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Prove the log untampered against its signed heads; exit 6 naming the first bad record",
		Long: `Check every record's hash and link and the Merkle root under every signed head,
and authenticate the heads with the log's Ed25519 public key.

Through the gateway, bridge downloads the records and the stored heads and
verifies them here: it never takes the gateway's word. The key is --public-key
or the one pinned in BRIDGE_HOME on first use, and bridge remembers the last
head it verified per gateway and refuses a log that does not continue it.
With --db it reads a stopped gateway's file; without --public-key the heads
are checked for consistency only.

--head FILE (or - for stdin) adds signed heads kept by a witness (the
audit.witness.file, or heads a webhook received): truncation, roll-back and
emptying are found against them. Exits 0 when the log verifies, 6 when it
does not (naming the first bad record), 1 when it cannot be read.`,
		Args: exactArgs(0),
	}
	o = sub(verify, "verify")
	verify.Flags().StringVar(&o.PublicKey, "public-key", "", "PEM Ed25519 public key the log is signed with (default through the gateway: the key pinned on first use)")
	verify.Flags().StringVar(&o.Head, "head", "", "signed heads from a witness (JSON lines, as the witness file keeps them; - reads stdin): the log must continue each")
	output(verify, o, "output format: json")

	tail := &cobra.Command{
		Use:   "tail [-f]",
		Short: "Print the last records; with -f, keep printing new ones as they are written",
		Args:  exactArgs(0),
	}
	o = sub(tail, "tail")
	tail.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing records as the gateway writes them (needs the gateway; Ctrl-C stops)")
	tail.Flags().IntVarP(&o.Lines, "lines", "n", 20, "how many of the newest records to print first")
	filters(tail, o)
	output(tail, o, "output format: json (one record per line)")

	cmd.AddCommand(list, show, replay, export, verify, tail, newCmdAuditKeygen(f))
	return cmd
}

// newCmdAuditKeygen builds `bridge audit keygen`.
func newCmdAuditKeygen(f *Factory) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Make the Ed25519 key the gateway signs its audit log with",
		Long: `Write a new Ed25519 private key to FILE (PEM PKCS #8, mode 0600; an existing
file is never overwritten) and its public key to FILE.pub. Set
audit.signing_key_file to FILE in the gateway configuration, and give FILE.pub
to auditors: ` + "`bridge audit verify --public-key FILE.pub`" + `.`,
		Args: exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			if out == "" {
				return usageError{errors.New("--out FILE is required")}
			}
			pub, err := audit.WriteNewKey(out, rand.Reader)
			if err != nil {
				return err
			}
			fmt.Fprintf(f.IO.Out, "wrote the signing key %s (key id %s) and its public key %s.pub\nset audit.signing_key_file: %s in the gateway configuration\n", out, audit.KeyID(pub), out, out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "where to write the private key (the public key goes to FILE.pub)")
	return c
}

// validate checks the flag combinations.
func (o *AuditOptions) validate() error {
	switch {
	case o.Output != "" && o.Output != "json":
		return usageError{fmt.Errorf("-o %q: the only output format is json", o.Output)}
	case o.DB != "" && o.Gateway != "":
		return usageError{errors.New("--db and --gateway exclude each other: read the file or ask the gateway")}
	case o.Command == "tail" && o.Follow && o.DB != "":
		return usageError{errors.New("tail -f follows the running gateway; --db reads a stopped gateway's file")}
	case o.Command == "export" && o.Format != "jsonl" && o.Format != "csv":
		return usageError{fmt.Errorf("--format %q: want jsonl or csv", o.Format)}
	case o.Filter.Limit < 0:
		return usageError{errors.New("--limit must not be negative")}
	case o.Lines < 0:
		return usageError{errors.New("--lines must not be negative")}
	}
	return nil
}

// filter builds the record filter from the flags.
func (ff *AuditFilterFlags) filter(now time.Time) (audit.Filter, error) {
	f := audit.Filter{
		User: ff.User, Server: ff.Server, Tool: ff.Tool, Decision: ff.Decision,
		Session: ff.Session, Kind: audit.Kind(ff.Kind), Limit: ff.Limit,
	}
	var err error
	if f.Since, err = parseWhenFlag("--since", ff.Since, now); err != nil {
		return f, err
	}
	if f.Until, err = parseWhenFlag("--until", ff.Until, now); err != nil {
		return f, err
	}
	if f.Kind != "" && !f.Kind.Valid() {
		kinds := make([]string, 0, len(audit.Kinds()))
		for _, k := range audit.Kinds() {
			kinds = append(kinds, string(k))
		}
		return f, usageError{fmt.Errorf("--kind %q: want one of %s", ff.Kind, strings.Join(kinds, ", "))}
	}
	if err := f.Validate(); err != nil {
		return f, usageError{err}
	}
	return f, nil
}

// parseWhenFlag reads an RFC 3339 time, a date (UTC midnight) or a
// positive duration counted back from now.
func parseWhenFlag(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageError{fmt.Errorf("%s %q: want an RFC 3339 time (2026-03-14T09:00:00Z), a date (2026-03-14) or a duration such as 24h", name, s)}
}

// auditReader is where the records come from: the gateway's API or a
// bbolt file.
type auditReader interface {
	// records returns the matches; f.Limit > 0 caps them (the newest when
	// f.Newest), and more says others match.
	records(ctx context.Context, f audit.Filter) (recs []audit.Record, more bool, err error)
	lookup(ctx context.Context, ref string) ([]audit.Record, error)
	session(ctx context.Context, id string) ([]audit.Record, error)
	export(ctx context.Context, f audit.Filter, format string, w io.Writer) error
	// verify proves the log against its signed heads and heads.
	verify(ctx context.Context, heads []audit.Checkpoint) (*audit.VerifyResponse, error)
	// follow calls fn for each matching record with seq > after as it is
	// written, until ctx ends or the stream does.
	follow(ctx context.Context, f audit.Filter, after uint64, fn func(audit.Record) error) error
	head(ctx context.Context) (*audit.HeadResponse, error)
	Close() error
}

func auditRun(ctx context.Context, opts *AuditOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	f := opts.F
	flt, err := opts.Filter.filter(f.Now())
	if err != nil {
		return err
	}
	r, err := openAuditReader(opts)
	if err != nil {
		return err
	}
	defer r.Close()
	out := f.IO.Out
	switch opts.Command {
	case "list":
		flt.Newest = true
		recs, more, err := r.records(ctx, flt)
		if err != nil {
			return err
		}
		if err := writeRecords(out, opts.Output, recs, audit.WriteTable); err != nil {
			return err
		}
		if more {
			fmt.Fprintf(f.IO.ErrOut, "(showing the newest %d matches; more match: narrow the filters or raise --limit)\n", len(recs))
		}
		return nil
	case "show":
		recs, err := r.lookup(ctx, opts.Arg)
		if err != nil {
			return err
		}
		return writeRecords(out, opts.Output, recs, audit.WriteTranscript)
	case "replay":
		recs, err := r.session(ctx, opts.Arg)
		if err != nil {
			return err
		}
		return writeRecords(out, opts.Output, recs, audit.WriteTranscript)
	case "export":
		return r.export(ctx, flt, opts.Format, out)
	case "verify":
		return auditVerify(ctx, opts, r)
	case "tail":
		return auditTail(ctx, opts, r, flt)
	}
	return usageError{fmt.Errorf("unknown audit command %q", opts.Command)}
}

// writeRecords prints recs as indented JSON (an array) or with text.
func writeRecords(w io.Writer, output string, recs []audit.Record, text func(io.Writer, []audit.Record) error) error {
	if output != "json" {
		return text(w, recs)
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(recs)
}

func auditVerify(ctx context.Context, opts *AuditOptions, r auditReader) error {
	var heads []audit.Checkpoint
	if opts.Head != "" {
		var in io.Reader = opts.F.IO.In
		if opts.Head != "-" {
			f, err := os.Open(opts.Head)
			if err != nil {
				return fmt.Errorf("--head: %w", err)
			}
			defer f.Close()
			in = f
		}
		var err error
		if heads, err = audit.ParseHeads(in); err != nil {
			return fmt.Errorf("--head: %w", err)
		}
	}
	rep, err := r.verify(ctx, heads)
	if err != nil {
		return err
	}
	out := opts.F.IO.Out
	if opts.Output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printVerifyReport(out, rep, opts.DB != "")
	}
	if !rep.OK {
		if rep.Break == nil {
			return errors.New("the gateway says the log does not verify but names no record")
		}
		return &verifyFailedError{brk: rep.Break}
	}
	return nil
}

func printVerifyReport(w io.Writer, rep *audit.VerifyResponse, offline bool) {
	if b := rep.Break; b != nil {
		fmt.Fprintf(w, "BROKEN at record %d (%s): %s\n", b.Seq, b.Reason, printable(b.Detail))
		if rep.Records > 0 {
			fmt.Fprintf(w, "records %d to %d verified before it\n", rep.First, rep.Last)
		}
		return
	}
	if rep.Records == 0 {
		fmt.Fprintln(w, "verified: the audit log is empty")
		return
	}
	fmt.Fprintf(w, "verified: records %d to %d (%d records), %d checkpoints\n", rep.First, rep.Last, rep.Records, rep.Checkpoints)
	if rep.Anchor != nil {
		fmt.Fprintf(w, "retention pruned records %d to %d before %s; the chain continues from its anchor\n",
			rep.Anchor.PrunedFrom, rep.Anchor.PrunedThrough, rep.Anchor.Before.Format(time.RFC3339))
	}
	switch {
	case rep.Signed && rep.SignedThrough > 0:
		fmt.Fprintf(w, "signed through record %d (key %s)", rep.SignedThrough, strings.Join(rep.KeyIDs, ", "))
		if rep.SignedThrough < rep.Last {
			fmt.Fprintf(w, "; records %d to %d are not signed yet", rep.SignedThrough+1, rep.Last)
		}
		fmt.Fprintln(w)
	case rep.Signed:
		fmt.Fprintf(w, "no valid signed checkpoint yet (key %s)\n", strings.Join(rep.KeyIDs, ", "))
	case offline && rep.Checkpoints > 0:
		fmt.Fprintln(w, "checkpoint signatures were not checked: pass --public-key to authenticate them")
	case !offline:
		fmt.Fprintln(w, "no signed head verified")
	}
}

func auditTail(ctx context.Context, opts *AuditOptions, r auditReader, flt audit.Filter) error {
	out := opts.F.IO.Out
	asJSON := opts.Output == "json"
	var after uint64
	if opts.Follow {
		// Read the head before the backlog, so a record written between
		// the two is neither lost nor printed twice.
		h, err := r.head(ctx)
		if err != nil {
			return err
		}
		after = h.Seq
	}
	if opts.Lines > 0 {
		backlog := flt
		backlog.Limit, backlog.Newest = opts.Lines, true
		recs, _, err := r.records(ctx, backlog)
		if err != nil {
			return err
		}
		if asJSON {
			err = audit.WriteJSONL(out, recs)
		} else if len(recs) > 0 || !opts.Follow {
			err = audit.WriteTable(out, recs)
		}
		if err != nil {
			return err
		}
		if n := len(recs); n > 0 {
			after = max(after, recs[n-1].Seq)
		}
	}
	if !opts.Follow {
		return nil
	}
	flt.Limit = 0
	return r.follow(ctx, flt, after, func(rec audit.Record) error {
		if asJSON {
			return audit.WriteJSONL(out, []audit.Record{rec})
		}
		return writeTableRow(out, rec)
	})
}

// writeTableRow prints one record as a row of the list table, without the
// header; WriteTable keeps every field safe for a terminal.
func writeTableRow(w io.Writer, rec audit.Record) error {
	var b strings.Builder
	if err := audit.WriteTable(&b, []audit.Record{rec}); err != nil {
		return err
	}
	_, row, _ := strings.Cut(b.String(), "\n")
	_, err := io.WriteString(w, row)
	return err
}

// printable removes what could drive a terminal from text that came from
// the network.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Bidi_Control) {
			return '?'
		}
		return r
	}, s)
}

// openAuditReader opens the source the options name.
func openAuditReader(opts *AuditOptions) (auditReader, error) {
	if opts.DB != "" {
		return openDBReader(opts)
	}
	f := opts.F
	home, prof, gw, err := resolveClient(f, opts.Gateway)
	if err != nil {
		return nil, err
	}
	hc := f.HTTPClient()
	return &apiReader{hc: hc, gw: gw, src: tokenSourceFor(f, home, prof, gw, hc), home: home, publicKey: opts.PublicKey, errOut: f.IO.ErrOut}, nil
}

// Bounds on what bridge reads from the gateway.
const (
	maxAuditJSON    = 256 << 20 // one JSON answer
	maxAuditSSELine = 64 << 20  // one record in the tail stream
	maxAuditError   = 16 << 10  // an error body
)

// apiReader reads the log through the gateway's audit API.
type apiReader struct {
	hc        *http.Client
	gw        string
	src       auth.AccessTokenSource
	home      string
	publicKey string
	errOut    io.Writer
}

func (a *apiReader) pins() *auditPins { return newAuditPins(a.home, a.gw) }

func (a *apiReader) Close() error { return nil }

// get sends an authenticated GET for path and returns a 2xx response.
// A 401 invalidates the token and retries once.
func (a *apiReader) get(ctx context.Context, path string, q url.Values, accept string) (*http.Response, error) {
	u := a.gw + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	for attempt := 0; ; attempt++ {
		tok, err := a.src.Token(ctx)
		if err != nil {
			if attempt > 0 && !errors.Is(err, auth.ErrNotLoggedIn) {
				err = fmt.Errorf("%w: %v", auth.ErrNotLoggedIn, err)
			}
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", accept)
		req.Header.Set("Authorization", "Bearer "+tok.Reveal())
		resp, err := a.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("the gateway %s is unreachable: %w", a.gw, errors.Unwrap(err))
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		msg, ours := apiErrorMessage(resp)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			if attempt == 0 {
				a.src.Invalidate(ctx, tok)
				continue
			}
			return nil, fmt.Errorf("%w: the gateway %s does not accept your login: run `bridge login`", auth.ErrNotLoggedIn, a.gw)
		case http.StatusForbidden:
			return nil, &forbiddenError{msg: msg}
		case http.StatusBadRequest:
			return nil, usageError{fmt.Errorf("the gateway rejected the request: %s", msg)}
		case http.StatusNotFound:
			if !ours {
				return nil, fmt.Errorf("the gateway %s does not serve the audit API (GET %s: HTTP 404); is it older than this bridge?", a.gw, path)
			}
			return nil, fmt.Errorf("%w: %s", audit.ErrNotFound, msg)
		}
		return nil, fmt.Errorf("the gateway answered HTTP %d: %s", resp.StatusCode, msg)
	}
}

// apiErrorMessage reads the message of an error answer, bounded and made
// safe to print; ours is false when the answer is not the audit API's.
func apiErrorMessage(resp *http.Response) (msg string, ours bool) {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxAuditError))
	var e audit.APIError
	if json.Unmarshal(body, &e) != nil || e.Message == "" || e.Code == "" {
		// Perhaps the gateway's authentication, or a proxy. Do not print a
		// body we do not know.
		return http.StatusText(resp.StatusCode), false
	}
	msg = e.Message
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return printable(msg), true
}

func (a *apiReader) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := a.get(ctx, path, q, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAuditJSON)).Decode(v); err != nil {
		return fmt.Errorf("the gateway sent an unreadable answer: %w", err)
	}
	return nil
}

// filterQuery encodes f as audit API query parameters.
func filterQuery(f audit.Filter) url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("user", f.User)
	set("server", f.Server)
	set("tool", f.Tool)
	set("decision", f.Decision)
	set("session", f.Session)
	set("kind", string(f.Kind))
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.After > 0 {
		q.Set("after", strconv.FormatUint(f.After, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Newest {
		q.Set("newest", "true")
	}
	return q
}

func (a *apiReader) records(ctx context.Context, f audit.Filter) ([]audit.Record, bool, error) {
	var resp audit.RecordsResponse
	if err := a.getJSON(ctx, "/v1/audit/records", filterQuery(f), &resp); err != nil {
		return nil, false, err
	}
	return resp.Records, resp.More, nil
}

func (a *apiReader) lookup(ctx context.Context, ref string) ([]audit.Record, error) {
	var resp audit.RecordsResponse
	err := a.getJSON(ctx, "/v1/audit/records/"+url.PathEscape(ref), nil, &resp)
	return resp.Records, err
}

func (a *apiReader) session(ctx context.Context, id string) ([]audit.Record, error) {
	var all []audit.Record
	var after uint64
	for {
		var q url.Values
		if after > 0 {
			q = url.Values{"after": {strconv.FormatUint(after, 10)}}
		}
		var resp audit.RecordsResponse
		if err := a.getJSON(ctx, "/v1/audit/sessions/"+url.PathEscape(id), q, &resp); err != nil {
			return nil, err
		}
		all = append(all, resp.Records...)
		if !resp.More || resp.NextAfter <= after {
			return all, nil
		}
		after = resp.NextAfter
	}
}

func (a *apiReader) export(ctx context.Context, f audit.Filter, format string, w io.Writer) error {
	q := filterQuery(f)
	q.Set("format", format)
	resp, err := a.get(ctx, "/v1/audit/export", q, "*/*")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("the export was cut off; what was written is incomplete: %w", err)
	}
	return nil
}

// verify downloads the records and the stored heads and verifies them
// here, against the pinned key and the last head this client verified.
func (a *apiReader) verify(ctx context.Context, heads []audit.Checkpoint) (*audit.VerifyResponse, error) {
	pub, err := a.trustedKey(ctx)
	if err != nil {
		return nil, err
	}
	var hr audit.HeadsResponse
	if err := a.getJSON(ctx, "/v1/audit/heads", nil, &hr); err != nil {
		return nil, err
	}
	resp, err := a.get(ctx, "/v1/audit/export", url.Values{"format": {"jsonl"}}, "application/x-ndjson")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	recs, err := readExport(resp.Body)
	if err != nil {
		return nil, err
	}
	store := audit.LoadMemStore(recs, hr.Heads)
	pin := a.pins()
	if last, err := pin.lastHead(); err != nil {
		return nil, err
	} else if last != nil {
		heads = append(heads, *last)
	}
	rep, err := audit.VerifyWith(ctx, store, audit.VerifyOptions{PublicKeys: []ed25519.PublicKey{pub}, Heads: heads})
	if err != nil {
		return nil, err
	}
	out := &audit.VerifyResponse{OK: rep.OK(), VerifyReport: *rep, KeyIDs: []string{audit.KeyID(pub)}}
	if rep.OK() {
		if err := pin.saveHead(newestHead(hr.Heads, rep.Last)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// trustedKey is --public-key, else the key pinned for this gateway, else
// the gateway's key, pinned now (trust on first use, said on stderr).
func (a *apiReader) trustedKey(ctx context.Context) (ed25519.PublicKey, error) {
	if a.publicKey != "" {
		return audit.LoadPublicKeyFile(a.publicKey)
	}
	pin := a.pins()
	if pub, err := pin.key(); err != nil || pub != nil {
		return pub, err
	}
	var h audit.HeadResponse
	if err := a.getJSON(ctx, "/v1/audit/head", nil, &h); err != nil {
		return nil, err
	}
	pub, err := audit.ParsePublicKeyPEM([]byte(h.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("the gateway did not send a usable public key: %w", err)
	}
	if err := pin.saveKey(pub); err != nil {
		return nil, err
	}
	fmt.Fprintf(a.errOut, "pinned the audit key %s of %s on first use (%s); pass --public-key to check against a key you hold\n", audit.KeyID(pub), a.gw, pin.dir)
	return pub, nil
}

// newestHead returns the newest head covering at most last records.
func newestHead(hs []audit.Checkpoint, last uint64) *audit.Checkpoint {
	var out *audit.Checkpoint
	for i := range hs {
		if h := hs[i]; h.Seq <= last && h.Frontier == nil && (out == nil || h.Seq >= out.Seq) {
			out = &hs[i]
		}
	}
	return out
}

// readExport decodes a JSONL export.
func readExport(r io.Reader) ([]audit.Record, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxAuditJSON))
	sc.Buffer(make([]byte, 0, 64<<10), maxAuditSSELine)
	var out []audit.Record
	for sc.Scan() {
		rec, err := audit.DecodeRecord(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("the gateway sent an unreadable record: %w", err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("the export was cut off: %w", err)
	}
	return out, nil
}

func (a *apiReader) head(ctx context.Context) (*audit.HeadResponse, error) {
	var h audit.HeadResponse
	if err := a.getJSON(ctx, "/v1/audit/head", nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

func (a *apiReader) follow(ctx context.Context, f audit.Filter, after uint64, fn func(audit.Record) error) error {
	f.Limit, f.Newest = 0, false
	f.After = after
	q := filterQuery(f)
	q.Set("after", strconv.FormatUint(after, 10))
	resp, err := a.get(ctx, "/v1/audit/tail", q, "text/event-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxAuditSSELine)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			switch event {
			case "record":
				rec, err := audit.DecodeRecord([]byte(data))
				if err != nil {
					return fmt.Errorf("the gateway sent an unreadable record: %w", err)
				}
				if err := fn(rec); err != nil {
					return err
				}
			case "end":
				var end struct{ Reason string }
				_ = json.Unmarshal([]byte(data), &end)
				return fmt.Errorf("the gateway ended the stream: %s", printable(end.Reason))
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			data = strings.TrimPrefix(line[len("data:"):], " ")
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the tail stream broke: %w", err)
	}
	return errors.New("the gateway closed the tail stream")
}

// dbReader reads a gateway's audit log directly: the segment log beside the
// data file, or the data file of a gateway that predates it.
type dbReader struct {
	store audit.Store
	pub   ed25519.PublicKey
}

func openDBReader(opts *AuditOptions) (*dbReader, error) {
	var pub ed25519.PublicKey
	if opts.PublicKey != "" {
		k, err := audit.LoadPublicKeyFile(opts.PublicKey)
		if err != nil {
			return nil, err
		}
		pub = k
	}
	s, err := audit.OpenReader(opts.DB, opts.LockTimeout)
	switch {
	case err == nil:
		return &dbReader{store: s, pub: pub}, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, audit.ErrCorrupt):
		return nil, err
	case strings.Contains(err.Error(), "locked by another process"):
		return nil, fmt.Errorf("%w\n--db reads the file only while the gateway is stopped: stop the gateway (or read a copy), or drop --db to ask the gateway", err)
	}
	return nil, err
}

func (d *dbReader) Close() error { return d.store.Close() }

func (d *dbReader) records(ctx context.Context, f audit.Filter) ([]audit.Record, bool, error) {
	limit := f.Limit
	if limit > 0 {
		f.Limit++
	}
	recs, err := audit.Query(ctx, d.store, f)
	if err != nil || limit == 0 || len(recs) <= limit {
		return recs, false, err
	}
	if f.Newest {
		return recs[1:], true, nil
	}
	return recs[:limit], true, nil
}

func (d *dbReader) lookup(ctx context.Context, ref string) ([]audit.Record, error) {
	if ref == "0" {
		// audit.Get reads seq 0 as "no upper bound".
		return nil, fmt.Errorf("%w: no record with seq 0", audit.ErrNotFound)
	}
	return audit.Lookup(ctx, d.store, ref)
}

func (d *dbReader) session(ctx context.Context, id string) ([]audit.Record, error) {
	return audit.Session(ctx, d.store, id)
}

func (d *dbReader) export(ctx context.Context, f audit.Filter, format string, w io.Writer) error {
	_, err := audit.Export(ctx, d.store, f, format, w)
	return err
}

func (d *dbReader) verify(ctx context.Context, heads []audit.Checkpoint) (*audit.VerifyResponse, error) {
	vo := audit.VerifyOptions{Heads: heads}
	if d.pub != nil {
		vo.PublicKeys = []ed25519.PublicKey{d.pub}
	}
	rep, err := audit.VerifyWith(ctx, d.store, vo)
	if err != nil {
		return nil, err
	}
	resp := &audit.VerifyResponse{OK: rep.OK(), VerifyReport: *rep}
	if d.pub != nil {
		resp.KeyIDs = []string{audit.KeyID(d.pub)}
	}
	return resp, nil
}

func (d *dbReader) head(ctx context.Context) (*audit.HeadResponse, error) {
	last, ok, err := d.store.Last(ctx)
	if err != nil || !ok {
		return &audit.HeadResponse{}, err
	}
	return &audit.HeadResponse{Seq: last.Seq, Hash: last.Hash}, nil
}

func (d *dbReader) follow(context.Context, audit.Filter, uint64, func(audit.Record) error) error {
	return usageError{errors.New("tail -f follows the running gateway; --db reads a stopped gateway's file")}
}
