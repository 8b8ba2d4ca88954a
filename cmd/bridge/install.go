package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/bridge/install"
)

// InstallOptions are the flags and dependencies of `bridge install` and
// `bridge uninstall`.
type InstallOptions struct {
	F       *Factory
	Client  string
	Server  string
	Project bool
	Force   bool
	Print   bool
	List    bool
	// Output is text or json (install --list).
	Output string
	// Installer edits the client files; nil means one for this machine.
	Installer *install.Installer
}

// NewCmdInstall builds `bridge install <client> <server>`.
func NewCmdInstall(f *Factory, runF func(context.Context, *InstallOptions) error) *cobra.Command {
	opts := &InstallOptions{F: f}
	cmd := &cobra.Command{
		Use:   "install <client> <server>",
		Short: "Add a gateway server to an agent's MCP configuration",
		Long: `Add an entry that runs "bridge connect <server>" to the MCP configuration
of <client>: ` + strings.Join(install.ClientNames(), ", ") + `.

The entry is merged into the client's own file, keeping every other entry,
comment and indentation; the previous file is saved under BRIDGE_HOME/backups
and replaced atomically. An entry of the same name is replaced only with
--force. The entry runs this binary by its absolute path.`,
		Example: `  bridge install claude-desktop github
  bridge install vscode warehouse --project
  bridge install cursor github --print
  bridge install --list`,
		Args: func(cmd *cobra.Command, args []string) error {
			if opts.List {
				return exactArgs(0)(cmd, args)
			}
			return exactArgs(2)(cmd, args)
		},
		ValidArgsFunction: completeClient,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				opts.Client, opts.Server = args[0], args[1]
			}
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if opts.Output == "json" && !opts.List {
				return usageError{fmt.Errorf("-o json goes with --list")}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			if opts.List {
				return installListRun(opts)
			}
			return installRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Project, "project", false, "write the project's file (.mcp.json, .cursor/mcp.json, .vscode/mcp.json) in the current directory")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing entry of the same name")
	cmd.Flags().BoolVar(&opts.Print, "print", false, "print the entry instead of writing it")
	cmd.Flags().BoolVar(&opts.List, "list", false, "show which clients are present and which gateway servers each runs")
	cmd.MarkFlagsMutuallyExclusive("list", "print")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "with --list: text (the default) or json")
	return cmd
}

// NewCmdUninstall builds `bridge uninstall <client> <server>`.
func NewCmdUninstall(f *Factory, runF func(context.Context, *InstallOptions) error) *cobra.Command {
	opts := &InstallOptions{F: f}
	cmd := &cobra.Command{
		Use:   "uninstall <client> <server>",
		Short: "Remove a gateway server from an agent's MCP configuration",
		Long: `Remove the entry named <server> from <client>'s MCP configuration. Only an
entry that runs "bridge connect" is removed, unless --force is given.`,
		Args:              exactArgs(2),
		ValidArgsFunction: completeClient,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Client, opts.Server = args[0], args[1]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return uninstallRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Project, "project", false, "edit the project's file in the current directory")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "remove the entry even if it does not run bridge")
	return cmd
}

// completeClient completes the first argument with the client names.
func completeClient(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return install.ClientNames(), cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// userHomeDir is the user's home directory from the factory's environment.
func userHomeDir(f *Factory) (string, error) {
	key := "HOME"
	if runtime.GOOS == "windows" {
		key = "USERPROFILE"
	}
	if h := f.Getenv(key); h != "" {
		return h, nil
	}
	return os.UserHomeDir()
}

// installer returns opts.Installer, or one for this machine.
func (opts *InstallOptions) installer() (*install.Installer, error) {
	if opts.Installer != nil {
		return opts.Installer, nil
	}
	f := opts.F
	home, err := userHomeDir(f)
	if err != nil {
		return nil, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	bh, err := f.Home()
	if err != nil {
		return nil, err
	}
	return &install.Installer{
		Env:       install.Env{GOOS: runtime.GOOS, Home: home, Getenv: f.Getenv, Dir: wd},
		BackupDir: filepath.Join(bh, "backups"),
		Now:       f.Now,
	}, nil
}

// executable is the absolute path of the running bridge.
func executable(f *Factory) (string, error) {
	exe, err := f.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the bridge executable: %w", err)
	}
	// Keep a symbolic link as it is: Homebrew's /opt/homebrew/bin/bridge
	// survives upgrades, the versioned Cellar path it points to does not.
	return filepath.Abs(exe)
}

func lookupClient(name string) (*install.Client, error) {
	c, err := install.LookupClient(name)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

func installRun(opts *InstallOptions) error {
	f := opts.F
	c, err := lookupClient(opts.Client)
	if err != nil {
		return err
	}
	if err := install.ValidateServer(opts.Server); err != nil {
		return usageError{err}
	}
	exe, err := executable(f)
	if err != nil {
		return err
	}
	in, err := opts.installer()
	if err != nil {
		return err
	}
	t, err := c.Target(in.Env, opts.Project)
	if err != nil {
		return usageError{err}
	}
	if opts.Print {
		fmt.Fprintf(f.IO.ErrOut, "Add this to %s (%s):\n", t.Path, c.Display)
		_, err := f.IO.Out.Write(install.Snippet(c, exe, opts.Server))
		return err
	}
	if strings.Contains(exe, "go-build") {
		fmt.Fprintf(f.IO.ErrOut, "warning: %s is a temporary `go run` build; the entry will stop working when it is deleted\n", exe)
	}
	res, err := in.Install(c, opts.Server, exe, install.Options{Project: opts.Project, Force: opts.Force})
	if err != nil {
		return err
	}
	switch {
	case res.Unchanged:
		fmt.Fprintf(f.IO.ErrOut, "%s already runs %q through bridge (%s); nothing to do.\n", c.Display, opts.Server, t.Path)
		return nil
	case res.Replaced:
		fmt.Fprintf(f.IO.ErrOut, "Replaced %q in %s (%s).\n", opts.Server, c.Display, t.Path)
	case res.Created:
		fmt.Fprintf(f.IO.ErrOut, "Created %s with %q for %s.\n", t.Path, opts.Server, c.Display)
	default:
		fmt.Fprintf(f.IO.ErrOut, "Added %q to %s (%s).\n", opts.Server, c.Display, t.Path)
	}
	if res.Backup != "" {
		fmt.Fprintf(f.IO.ErrOut, "The previous file is saved as %s.\n", res.Backup)
	}
	fmt.Fprintf(f.IO.ErrOut, "Restart %s (or reload its MCP servers) to use it; `bridge doctor` checks the set-up.\n", c.Display)
	return nil
}

func uninstallRun(opts *InstallOptions) error {
	f := opts.F
	c, err := lookupClient(opts.Client)
	if err != nil {
		return err
	}
	in, err := opts.installer()
	if err != nil {
		return err
	}
	res, err := in.Uninstall(c, opts.Server, install.Options{Project: opts.Project, Force: opts.Force})
	if err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "Removed %q from %s (%s).\n", opts.Server, c.Display, res.Target.Path)
	if res.Backup != "" {
		fmt.Fprintf(f.IO.ErrOut, "The previous file is saved as %s.\n", res.Backup)
	}
	return nil
}

func installListRun(opts *InstallOptions) error {
	in, err := opts.installer()
	if err != nil {
		return err
	}
	out := opts.F.IO.Out
	if opts.Output == "json" {
		return writeJSONOut(out, listingViews(in.List()))
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tSCOPE\tSTATUS\tBRIDGE SERVERS\tCONFIG FILE")
	var problems []error
	for _, l := range in.List() {
		status := "not found"
		switch {
		case l.Err != nil:
			status = "unreadable"
			problems = append(problems, l.Err)
		case l.Exists:
			status = "configured"
		case l.Present:
			status = "present"
		}
		servers := "-"
		if len(l.Bridge) > 0 {
			var names []string
			for _, s := range l.Bridge {
				names = append(names, s.Name)
			}
			servers = strings.Join(names, ", ")
		}
		if l.Others > 0 {
			servers += fmt.Sprintf(" (+%d other)", l.Others)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Target.Client.Name, l.Target.Scope, status, servers, l.Target.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(opts.F.IO.ErrOut, "warning: %v\n", p)
	}
	return nil
}
