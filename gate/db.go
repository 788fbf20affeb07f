package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/vulndb"
)

// providerFlag collects repeated NAME=DIR flags.
type providerFlag []vulndb.ProviderDir

func (p *providerFlag) String() string { return "" }

func (p *providerFlag) Set(v string) error {
	name, dir, ok := strings.Cut(v, "=")
	if !ok || name == "" || dir == "" {
		return fmt.Errorf("want NAME=DIR, got %q", v)
	}
	*p = append(*p, vulndb.ProviderDir{Name: name, Dir: dir})
	return nil
}

func dbCommand() *ffcli.Command {
	return &ffcli.Command{
		Name: "db", ShortUsage: "gate db <build|import|status> [flags]", ShortHelp: "build, import and inspect vulnerability DBs",
		Subcommands: []*ffcli.Command{dbBuildCommand(), dbImportCommand(), dbStatusCommand()},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func dbBuildCommand() *ffcli.Command {
	fs := flag.NewFlagSet("gate db build", flag.ContinueOnError)
	out := fs.String("out", "", "directory for the DB archive and latest.json (required)")
	var providers, osv providerFlag
	fs.Var(&providers, "provider", "NAME=WORKSPACE: a vunnel provider workspace (repeatable)")
	fs.Var(&osv, "osv", "NAME=DIR: a directory of OSV records (repeatable)")
	return &ffcli.Command{
		Name: "build", ShortUsage: "gate db build --out DIR --provider NAME=WORKSPACE ... [--osv NAME=DIR ...]",
		ShortHelp: "build a grype v6 DB archive with grype's own builder", FlagSet: fs,
		Exec: func(ctx context.Context, _ []string) error {
			if *out == "" {
				return fmt.Errorf("--out is required")
			}
			if len(providers)+len(osv) == 0 {
				return fmt.Errorf("name at least one --provider or --osv")
			}
			start := time.Now()
			fmt.Fprintf(os.Stderr, "building vulnerability DB from %d sources...\n", len(providers)+len(osv))
			res, err := vulndb.Build(ctx, vulndb.BuildConfig{OutDir: *out, Providers: providers, OSV: osv})
			if err != nil {
				return err
			}
			fmt.Printf("archive  %s\nlisting  %s\nbuilt    %s (%s)\n", res.ArchivePath, res.ListingPath, res.Built.Format(time.RFC3339), time.Since(start).Round(time.Millisecond))
			printProviders(res.Providers)
			return nil
		},
	}
}

func printProviders(ps []buildgate.Provider) {
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PROVIDER\tRECORDS\tCAPTURED")
	for _, p := range ps {
		captured := ""
		if p.DateCaptured != nil {
			captured = p.DateCaptured.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\n", p.Name, p.Records, captured)
	}
	w.Flush()
}

func dbImportCommand() *ffcli.Command {
	fs := flag.NewFlagSet("gate db import", flag.ContinueOnError)
	data := fs.String("data", DefaultConfig().DataDir, "the gate's data directory")
	return &ffcli.Command{
		Name: "import", ShortUsage: "gate db import ARCHIVE --data DIR", ShortHelp: "validate a DB archive and swap it in",
		FlagSet: fs, Options: parseOptions(),
		Exec: func(ctx context.Context, args []string) error {
			args, err := interspersed(fs, args)
			if err != nil {
				return err
			}
			if len(args) != 1 {
				return fmt.Errorf("name one archive (gate db import ARCHIVE --data DIR)")
			}
			m, err := vulndb.Open(*data, vulndb.DefaultOptions())
			if err != nil {
				return err
			}
			defer m.Close()
			info, err := m.ImportFile(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Printf("imported DB built %s into %s\n", info.Built.Format(time.RFC3339), *data)
			printProviders(info.Providers)
			return nil
		},
	}
}

func dbStatusCommand() *ffcli.Command {
	fs := flag.NewFlagSet("gate db status", flag.ContinueOnError)
	data := fs.String("data", DefaultConfig().DataDir, "the gate's data directory")
	asJSON := fs.Bool("json", false, "print JSON")
	return &ffcli.Command{
		Name: "status", ShortUsage: "gate db status --data DIR [--json]", ShortHelp: "show the installed DB",
		FlagSet: fs, Options: parseOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			m, err := vulndb.Open(*data, vulndb.DefaultOptions())
			if err != nil {
				return err
			}
			defer m.Close()
			s := dbStatus(m.Status(), "")
			if *asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			if !s.Ready {
				fmt.Println("no vulnerability DB installed")
			} else {
				fmt.Printf("schema   %s\nbuilt    %s (age %s)\n", s.SchemaVersion, s.Built.Format(time.RFC3339), s.Age)
				printProviders(m.Status().Providers)
			}
			if s.LastUpdateAttempt != nil {
				fmt.Printf("last update attempt %s", s.LastUpdateAttempt.Format(time.RFC3339))
				if s.LastUpdateError != "" {
					fmt.Printf(": %s", s.LastUpdateError)
				}
				fmt.Println()
			}
			return nil
		},
	}
}

// interspersed parses flags that follow positional arguments (Go's flag
// package stops at the first positional one), so that
// "gate db import ARCHIVE --data DIR" works. It returns the positionals.
func interspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if strings.HasPrefix(args[0], "-") {
			if err := fs.Parse(args); err != nil {
				return nil, err
			}
			args = fs.Args()
			continue
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return pos, nil
}
