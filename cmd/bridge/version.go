package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/seed-3f9f6f16/bridge/bridge/settings"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=…
// -X main.date=…". An organisation bakes its defaults into its builds with
// -X main.defaultGateway=… and optionally -X main.defaultIssuer=… and
// -X main.defaultClientID=… (see docs/admin.md).
var (
	version         = "dev"
	commit          = ""
	date            = ""
	defaultGateway  = ""
	defaultIssuer   = ""
	defaultClientID = ""
)

// BuildInfo describes this binary.
type BuildInfo struct {
	Version, Commit, Date string
	GoVersion, OS, Arch   string
	// BuiltIn are the organisation defaults baked in with -ldflags.
	BuiltIn settings.Values
}

// currentBuild returns this binary's BuildInfo, taking the commit and date
// from the Go toolchain's VCS stamp when the build did not set them.
func currentBuild() BuildInfo {
	b := BuildInfo{
		Version: version, Commit: commit, Date: date,
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		BuiltIn: builtInSettings(),
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && b.Commit == "":
				b.Commit = s.Value
			case s.Key == "vcs.time" && b.Date == "":
				b.Date = s.Value
			case s.Key == "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && commit == "" && b.Commit != "" {
			b.Commit += "-dirty"
		}
	}
	return b
}

// builtInSettings are the organisation defaults baked into this binary.
func builtInSettings() settings.Values {
	return settings.Values{Gateway: defaultGateway, Issuer: defaultIssuer, ClientID: defaultClientID}
}

// VersionOptions are the dependencies of `bridge version`.
type VersionOptions struct {
	F     *Factory
	Build BuildInfo
	// ManagedPath is the machine-wide managed configuration file.
	ManagedPath string
	// Output is text or json.
	Output string
}

// NewCmdVersion builds `bridge version`.
func NewCmdVersion(f *Factory) *cobra.Command { return newCmdVersion(f, nil) }

func newCmdVersion(f *Factory, runF func(context.Context, *VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{F: f}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, build and where each setting comes from",
		Long: `Print the version, commit and build date, and each organisation setting
(gateway, issuer, client_id) with where it came from: a flag, your profile
(bridge login), the machine-wide managed configuration (possibly locked by an
admin), or the defaults built into this binary.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			opts.Build = currentBuild()
			opts.ManagedPath = managedConfigPath(f)
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return versionRun(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "text or json")
	return cmd
}

func versionRun(opts *VersionOptions) error {
	if opts.Output == "json" {
		return versionJSON(opts)
	}
	f, b := opts.F, opts.Build
	out := f.IO.Out
	fmt.Fprintf(out, "bridge %s\n", b.Version)
	fmt.Fprintf(out, "commit:  %s\n", orNone(b.Commit))
	fmt.Fprintf(out, "built:   %s\n", orNone(b.Date))
	fmt.Fprintf(out, "go:      %s %s/%s\n", b.GoVersion, b.OS, b.Arch)
	fmt.Fprintln(out)

	home, err := f.Home()
	if err != nil {
		fmt.Fprintf(out, "settings: %v\n", err)
		return nil
	}
	prof, err := loadProfile(home)
	if err != nil {
		fmt.Fprintf(out, "settings: %v\n", err)
		return nil
	}
	s, err := resolveSettings(opts.ManagedPath, b.BuiltIn, home, prof, settings.Values{})
	if err != nil {
		fmt.Fprintf(out, "settings: %v\n", err)
		return nil
	}
	printSettings(out, s)
	return nil
}

// printSettings writes one line per setting with its source.
func printSettings(out io.Writer, s *settings.Settings) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tFROM")
	for _, st := range s.All() {
		v, from := st.Value, st.Source
		if v == "" {
			v, from = "-", "not set"
		}
		if st.Ignored != "" {
			from += "; " + st.Ignored + ", ignored"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", st.Key, v, from)
	}
	_ = tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
