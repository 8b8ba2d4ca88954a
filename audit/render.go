package audit

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// Everything written for a person goes through clean: record fields come
// from agents and servers, and must not be able to drive the terminal
// (escape sequences) or reorder the text (bidi controls).
func clean(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Bidi_Control, unicode.Zl, unicode.Zp)
}

const timeLayout = "2006-01-02 15:04:05.000"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func fmtLatency(micros int64) string {
	d := time.Duration(micros) * time.Microsecond
	if d >= time.Millisecond {
		d = d.Round(time.Millisecond)
	}
	return d.String()
}

func fmtMasked(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", clean(k), m[k])
	}
	return strings.Join(parts, ", ")
}

func fmtIdentity(id Identity) string {
	var b strings.Builder
	switch {
	case id.Email != "" && id.Subject != "":
		fmt.Fprintf(&b, "%s (%s)", clean(id.Email), clean(id.Subject))
	case id.Email != "":
		b.WriteString(clean(id.Email))
	default:
		b.WriteString(clean(id.Subject))
	}
	if len(id.Groups) > 0 {
		fmt.Fprintf(&b, ", groups %s", clean(strings.Join(id.Groups, ",")))
	}
	return b.String()
}

func fmtClient(id Identity) string {
	return strings.TrimSpace(clean(id.ClientName) + " " + clean(id.ClientVersion))
}

// WriteTranscript writes recs (normally one session, from [Session]) as a
// transcript a person can read, in time order: who, what was asked, what
// policy said, who approved, what came back and what was masked. Messages
// are printed as recorded, that is already masked.
func WriteTranscript(w io.Writer, recs []Record) error {
	bw := bufio.NewWriter(w)
	sorted := slices.Clone(recs)
	slices.SortStableFunc(sorted, func(a, b Record) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmpUint(a.Seq, b.Seq)
	})
	if len(sorted) == 0 {
		fmt.Fprintln(bw, "(no records)")
		return bw.Flush()
	}
	var owner Identity
	for _, r := range sorted {
		if r.Identity.Subject != "" || r.Identity.Email != "" {
			owner = r.Identity
			break
		}
	}
	first, last := sorted[0], sorted[len(sorted)-1]
	if first.Session != "" {
		fmt.Fprintf(bw, "Session %s\n", clean(first.Session))
	} else {
		fmt.Fprintf(bw, "Records %d to %d\n", first.Seq, last.Seq)
	}
	if owner.Subject != "" || owner.Email != "" {
		fmt.Fprintf(bw, "  user    %s\n", fmtIdentity(owner))
	}
	if c := fmtClient(owner); c != "" {
		fmt.Fprintf(bw, "  client  %s\n", c)
	}
	fmt.Fprintf(bw, "  time    %s to %s UTC, %d records\n\n", fmtTime(first.Time), fmtTime(last.Time), len(sorted))

	for i := range sorted {
		r := &sorted[i]
		line, body := describe(r)
		if u := r.Identity; (u.Subject != "" || u.Email != "") && (u.Subject != owner.Subject || u.Email != owner.Email) &&
			r.Kind != KindApprovalReviewed {
			line += " [by " + clean(r.User()) + "]"
		}
		fmt.Fprintf(bw, "%s  #%-6d %s\n", fmtTime(r.Time), r.Seq, line)
		const indent = "                                  "
		for _, b := range body {
			fmt.Fprintf(bw, "%s%s\n", indent, b)
		}
	}
	return bw.Flush()
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// describe returns the headline and the indented detail lines of a record.
func describe(r *Record) (string, []string) {
	var body []string
	var h strings.Builder
	arrow := "→"
	if r.Direction == ToClient {
		arrow = "←"
	}
	id := ""
	if r.RequestID != "" {
		id = " (id " + clean(r.RequestID) + ")"
	}
	var parts []string
	for _, p := range []string{r.Server, r.Method, r.Tool} {
		if p != "" {
			parts = append(parts, clean(p))
		}
	}
	target := strings.Join(parts, " ")
	switch r.Kind {
	case KindSessionStart:
		h.WriteString("session started")
		if c := fmtClient(r.Identity); c != "" {
			h.WriteString(" from " + c)
		}
	case KindSessionEnd:
		h.WriteString("session ended")
	case KindRequest:
		fmt.Fprintf(&h, "→ asked %s%s", target, id)
	case KindResponse:
		fmt.Fprintf(&h, "← %s answered%s", clean(r.Server), id)
	case KindNotification:
		fmt.Fprintf(&h, "%s notification %s", arrow, target)
	case KindServerRequest:
		fmt.Fprintf(&h, "← %s asks the client: %s%s", clean(r.Server), clean(r.Method), id)
	case KindClientResponse:
		fmt.Fprintf(&h, "→ client answered %s%s", clean(r.Server), id)
	case KindDecision:
		fmt.Fprintf(&h, "policy: %s", strings.ToUpper(clean(r.Decision)))
		if r.Rule != "" {
			fmt.Fprintf(&h, " (rule %s)", clean(r.Rule))
		} else {
			h.WriteString(" (default)")
		}
		if target != "" {
			fmt.Fprintf(&h, " for %s%s", target, id)
		}
	case KindApprovalCreated:
		fmt.Fprintf(&h, "approval %s requested for %s", clean(r.ApprovalID), target)
		if len(r.Reviewers) > 0 {
			fmt.Fprintf(&h, ", reviewers %s", clean(strings.Join(r.Reviewers, ", ")))
		}
	case KindApprovalReviewed:
		who := clean(strings.Join(r.Reviewers, ", "))
		if who == "" {
			who = clean(r.User())
		}
		verdict := clean(r.Outcome)
		if verdict == "" {
			verdict = "reviewed"
		}
		fmt.Fprintf(&h, "approval %s %s by %s", clean(r.ApprovalID), verdict, who)
	case KindApprovalExpired:
		fmt.Fprintf(&h, "approval %s expired", clean(r.ApprovalID))
	case KindApprovalCancelled:
		fmt.Fprintf(&h, "approval %s cancelled", clean(r.ApprovalID))
	case KindApprovalExecuted:
		fmt.Fprintf(&h, "approval %s executed: %s%s", clean(r.ApprovalID), target, id)
	case KindToolPinChanged:
		fmt.Fprintf(&h, "tool definition changed: %s", target)
	case KindPolicyReload:
		h.WriteString("policy reloaded")
	case KindGatewayStart:
		h.WriteString("gateway started")
	case KindGatewayStop:
		h.WriteString("gateway stopped")
	case KindAnchor:
		if a := r.Anchor; a != nil {
			fmt.Fprintf(&h, "retention pruned %d records (%d to %d)", a.PrunedCount, a.PrunedFrom, a.PrunedThrough)
		} else {
			h.WriteString("retention anchor")
		}
	default:
		h.WriteString(clean(string(r.Kind)))
	}
	if r.Outcome != "" && r.Kind != KindApprovalReviewed {
		fmt.Fprintf(&h, " — %s", clean(r.Outcome))
	}
	if r.LatencyMicros > 0 {
		fmt.Fprintf(&h, " in %s", fmtLatency(r.LatencyMicros))
	}
	if r.Kind == KindRequest && r.Decision != "" {
		// The gateway records the policy decision on the request itself.
		line := "policy: " + strings.ToUpper(clean(r.Decision))
		if r.Rule != "" {
			line += " (rule " + clean(r.Rule) + ")"
		}
		body = append(body, line)
	}
	if r.Reason != "" {
		body = append(body, "reason: "+clean(r.Reason))
	}
	if r.ArgsDigest != "" && (r.Kind == KindRequest || r.Kind == KindApprovalCreated) {
		body = append(body, "args digest: "+clean(r.ArgsDigest))
	}
	if m := fmtMasked(r.Masked); m != "" {
		body = append(body, "masked: "+m)
	}
	if r.Error != "" {
		body = append(body, "error: "+clean(r.Error))
	}
	if len(r.Message) > 0 {
		var buf bytes.Buffer
		if json.Compact(&buf, r.Message) != nil {
			buf.Reset()
			buf.Write(r.Message)
		}
		body = append(body, "message: "+clean(buf.String()))
	}
	return h.String(), body
}

// WriteJSONL writes each record's stored form (see [Record]) on its own line:
// the export an external verifier or a SIEM reads.
func WriteJSONL(w io.Writer, recs []Record) error {
	bw := bufio.NewWriter(w)
	for i := range recs {
		b, err := EncodeRecord(&recs[i])
		if err != nil {
			return err
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// csvHeader is the header row WriteCSV writes.
var csvHeader = []string{
	"seq", "time", "kind", "direction", "session", "subject", "email", "groups",
	"client_name", "client_version", "server", "method", "tool", "request_id",
	"args_digest", "decision", "rule", "reason", "approval_id", "reviewers", "masked",
	"latency_micros", "outcome", "error", "message", "prev_hash", "hash",
}

// WriteCSV writes recs as CSV with a header row, for a SIEM or a spreadsheet.
// Lists are joined with ";", masked counts written as name=count. To keep a
// spreadsheet from running formulas planted in agent-supplied text, a cell
// that starts with =, +, -, @, tab or carriage return is prefixed with a
// single quote (the OWASP advice); use JSONL for an exact export.
func WriteCSV(w io.Writer, recs []Record) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	row := make([]string, len(csvHeader))
	for i := range recs {
		r := &recs[i]
		var masked []string
		for k, v := range r.Masked {
			masked = append(masked, k+"="+strconv.Itoa(v))
		}
		sort.Strings(masked)
		row = append(row[:0],
			strconv.FormatUint(r.Seq, 10), r.Time.UTC().Format(time.RFC3339Nano), string(r.Kind),
			r.Direction, r.Session, r.Identity.Subject, r.Identity.Email,
			strings.Join(r.Identity.Groups, ";"), r.Identity.ClientName, r.Identity.ClientVersion,
			r.Server, r.Method, r.Tool, r.RequestID, r.ArgsDigest, r.Decision, r.Rule, r.Reason,
			r.ApprovalID, strings.Join(r.Reviewers, ";"), strings.Join(masked, ";"),
			strconv.FormatInt(r.LatencyMicros, 10), r.Outcome, r.Error, string(r.Message),
			r.PrevHash, r.Hash)
		for j, c := range row {
			row[j] = csvSafe(c)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteTable writes recs as an aligned table, one line per record, for
// `bridge audit list`.
func WriteTable(w io.Writer, recs []Record) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tUSER\tSERVER\tTOOL\tDECISION\tOUTCOME\tSESSION")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return clean(strings.ReplaceAll(s, "\t", " "))
	}
	for i := range recs {
		r := &recs[i]
		tool := r.Tool
		if tool == "" {
			tool = r.Method
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, fmtTime(r.Time), r.Kind,
			dash(r.User()), dash(r.Server), dash(tool), dash(r.Decision), dash(r.Outcome), dash(r.Session))
	}
	return tw.Flush()
}
