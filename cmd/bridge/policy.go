package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/approval/config"
	"github.com/seed-3f9f6f16/bridge/approval/policy"
)

// PolicyOptions are the flags of `bridge policy check|test`.
type PolicyOptions struct {
	F      *Factory
	Config string
	User   string
	Groups []string
	Server string
	Method string
	Tool   string
	Ref    string
	Args   string
	// Output is table or json; Expect, when set, is the decision the
	// call must get (allow, deny or approve), else the command exits 1.
	Output string
	Expect string
}

// NewCmdPolicy builds `bridge policy`.
func NewCmdPolicy(f *Factory, runCheck, runTest func(context.Context, *PolicyOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check a gateway configuration's policy, or test a call against it",
	}
	check := &PolicyOptions{F: f}
	checkCmd := &cobra.Command{
		Use:   "check --config gateway.yaml",
		Short: "Validate the whole configuration and summarize the policy",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if check.Config == "" {
				return usageError{fmt.Errorf("--config is required")}
			}
			if runCheck != nil {
				return runCheck(cmd.Context(), check)
			}
			return policyCheckRun(check)
		},
	}
	checkCmd.Flags().StringVar(&check.Config, "config", "", "the gateway's YAML configuration")

	test := &PolicyOptions{F: f}
	testCmd := &cobra.Command{
		Use:   "test --config gateway.yaml --user U --groups a,b --server S --tool T [--args JSON] [--expect allow|deny|approve] [-o json]",
		Short: "Show the decision for a call, the rule that made it and why earlier rules did not match",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if test.Config == "" || test.Server == "" {
				return usageError{fmt.Errorf("--config and --server are required")}
			}
			if test.Args != "" && !json.Valid([]byte(test.Args)) {
				return usageError{fmt.Errorf("--args is not valid JSON")}
			}
			if err := checkOutput(test.Output); err != nil {
				return err
			}
			if err := checkExpect(test.Expect); err != nil {
				return err
			}
			if runTest != nil {
				return runTest(cmd.Context(), test)
			}
			return policyTestRun(test)
		},
	}
	fl := testCmd.Flags()
	fl.StringVar(&test.Config, "config", "", "the gateway's YAML configuration")
	fl.StringVar(&test.User, "user", "", "the caller's user name (email)")
	fl.StringSliceVar(&test.Groups, "groups", nil, "the caller's groups, comma-separated")
	fl.StringVar(&test.Server, "server", "", "the upstream server")
	fl.StringVar(&test.Method, "method", policy.MethodToolsCall, "the MCP method")
	fl.StringVar(&test.Ref, "ref", "", "for --method completion/complete: ref/prompt or ref/resource, the kind of target --tool names")
	fl.StringVar(&test.Tool, "tool", "", "the target: tool name, resource URI (resources/read, resources/subscribe), prompt name (prompts/get), or what completion/complete completes")
	fl.StringVar(&test.Args, "args", "", "the call's arguments as JSON")
	fl.StringVarP(&test.Output, "output", "o", "text", "text or json")
	fl.StringVar(&test.Expect, "expect", "", "exit 1 unless the decision is this: allow, deny or approve (for policy tests in CI)")
	cmd.AddCommand(checkCmd, testCmd, newCmdPins(f))
	return cmd
}

// loadForPolicy loads a configuration, reporting every problem.
func loadForPolicy(path string) (*config.Config, error) {
	cfg, err := config.LoadFile(path, config.OSEnv())
	if err != nil {
		return nil, fmt.Errorf("the configuration is invalid:\n%s", indent(err.Error()))
	}
	return cfg, nil
}

func policyCheckRun(opts *PolicyOptions) error {
	cfg, err := loadForPolicy(opts.Config)
	if err != nil {
		return err
	}
	out := opts.F.IO.Out
	fmt.Fprintf(out, "%s: valid\n", opts.Config)
	for _, w := range cfg.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	names := make([]string, 0, len(cfg.Servers))
	for name, s := range cfg.Servers {
		names = append(names, name+" ("+s.Transport+")")
	}
	fmt.Fprintf(out, "servers: %s\n", strings.Join(sorted(names), ", "))
	fmt.Fprintf(out, "masking profiles: %s\n", strings.Join(cfg.Masks.Names(), ", "))
	return policy.WriteSummary(out, cfg.CompiledPolicy)
}

func policyTestRun(opts *PolicyOptions) error {
	cfg, err := loadForPolicy(opts.Config)
	if err != nil {
		return err
	}
	if _, ok := cfg.Servers[opts.Server]; !ok {
		return usageError{fmt.Errorf("--server %q is not in %s", opts.Server, opts.Config)}
	}
	in := policy.Input{User: opts.User, Groups: opts.Groups, Server: opts.Server, Method: opts.Method, Tool: opts.Tool, Ref: opts.Ref}
	if opts.Args != "" {
		in.Args = json.RawMessage(opts.Args)
	}
	return writePolicyTest(opts.F.IO.Out, opts, cfg.CompiledPolicy.Explain(in))
}

func sorted(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// PinsOptions are the flags of `bridge policy pins`.
type PinsOptions struct {
	F       *Factory
	Gateway string
	Output  string
	Target  string // server/tool for accept
}

// newCmdPins builds `bridge policy pins list|accept`.
func newCmdPins(f *Factory) *cobra.Command {
	opts := &PinsOptions{F: f}
	cmd := &cobra.Command{
		Use:   "pins",
		Short: "List upstream tool definitions the gateway pinned, and accept changed ones (admins)",
	}
	cmd.PersistentFlags().StringVar(&opts.Gateway, "gateway", "", "the gateway's `URL` (default: the one bridge login saved)")
	list := &cobra.Command{
		Use:   "list [-o json]",
		Short: "List the tool definitions the gateway pinned, marking those that changed upstream",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return pinsListRun(cmd.Context(), opts) },
	}
	list.Flags().StringVarP(&opts.Output, "output", "o", "table", "table or json")
	accept := &cobra.Command{
		Use:   "accept <server>/<tool>",
		Short: "Accept a tool's changed definition, so calls to it run again",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			if !strings.Contains(opts.Target, "/") {
				return usageError{fmt.Errorf("want <server>/<tool>, such as github/create_issue")}
			}
			return pinsAcceptRun(cmd.Context(), opts)
		},
	}
	cmd.AddCommand(list, accept)
	return cmd
}

// pinsClient reuses the reviewer API client: same login, same errors.
func pinsClient(opts *PinsOptions) (*approvalsClient, error) {
	return newApprovalsClient(&ApprovalsOptions{F: opts.F, Gateway: opts.Gateway})
}

type pinView struct {
	Server      string    `json:"server"`
	Tool        string    `json:"tool"`
	Fingerprint string    `json:"fingerprint"`
	Changed     string    `json:"changed,omitempty"`
	ChangedAt   time.Time `json:"changed_at,omitzero"`
	Description string    `json:"description,omitempty"`
}

func pinsListRun(ctx context.Context, opts *PinsOptions) error {
	c, err := pinsClient(opts)
	if err != nil {
		return err
	}
	var body struct {
		Pins []pinView `json:"pins"`
	}
	if err := c.getJSON(ctx, "/v1/pins", &body); err != nil {
		return err
	}
	out := opts.F.IO.Out
	if opts.Output == "json" {
		return writeJSONOut(out, body.Pins)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tTOOL\tSTATE\tFINGERPRINT")
	for _, p := range body.Pins {
		state := "pinned"
		if p.Changed != "" {
			state = "CHANGED " + p.ChangedAt.Format(time.RFC3339) + " → " + short(p.Changed)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", sanitize(p.Server), sanitize(p.Tool), state, short(p.Fingerprint))
	}
	return tw.Flush()
}

func pinsAcceptRun(ctx context.Context, opts *PinsOptions) error {
	c, err := pinsClient(opts)
	if err != nil {
		return err
	}
	server, tool, _ := strings.Cut(opts.Target, "/")
	b, _ := json.Marshal(map[string]string{"server": server, "tool": tool})
	resp, err := c.do(ctx, "POST", "/v1/pins/accept", b)
	if err != nil {
		return err
	}
	resp.Body.Close()
	fmt.Fprintf(opts.F.IO.ErrOut, "Accepted the new definition of %s/%s; calls to it run again.\n", server, tool)
	return nil
}
