package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/server"
	"github.com/buildgate/buildgate/internal/store/sqlite"
)

// openTokenStore opens the store of the data directory data.
func openTokenStore(ctx context.Context, data string) (*sqlite.DB, error) {
	return sqlite.Open(ctx, filepath.Join(data, "buildgate.db"))
}

func tokenCommand() *ffcli.Command {
	return tokenCommandTo(stdout{})
}

// stdout writes to os.Stdout as it is when written to.
type stdout struct{}

func (stdout) Write(p []byte) (int, error) { return os.Stdout.Write(p) }

// tokenCommandTo is gate token, printing to out.
func tokenCommandTo(out io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("gate token create", flag.ContinueOnError)
	data := fs.String("data", DefaultConfig().DataDir, "the gate's data directory")
	name := fs.String("name", "", "a name for the token (required)")
	role := fs.String("role", string(buildgate.RoleCI), "role: admin, ci or admission (may only send admission reviews)")
	expires := fs.Duration("expires", 0, "lifetime of the token, e.g. 720h (default: it does not expire)")
	create := &ffcli.Command{
		Name: "create", ShortUsage: "gate token create --name N --role admin|ci|admission [--expires 720h] --data DIR", ShortHelp: "create an API token and print it",
		FlagSet: fs, Options: parseOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			if *name == "" {
				return fmt.Errorf("--name is required")
			}
			r := buildgate.Role(*role)
			if !r.Valid() {
				return fmt.Errorf("invalid --role %q: want admin, ci or admission", *role)
			}
			if *expires < 0 {
				return fmt.Errorf("invalid --expires %s: want a positive duration, or none", *expires)
			}
			tok, err := server.NewTokenRecord(*name, r, *expires, time.Now())
			if err != nil {
				return err
			}
			db, err := openTokenStore(ctx, *data)
			if err != nil {
				return err
			}
			defer db.Close()
			secret, hash := server.NewToken()
			if err := db.CreateToken(ctx, tok, hash); err != nil {
				return err
			}
			fmt.Fprintln(out, secret)
			return nil
		},
	}

	lfs := flag.NewFlagSet("gate token list", flag.ContinueOnError)
	ldata := lfs.String("data", DefaultConfig().DataDir, "the gate's data directory")
	list := &ffcli.Command{
		Name: "list", ShortUsage: "gate token list --data DIR", ShortHelp: "list API tokens (never their secrets)",
		FlagSet: lfs, Options: parseOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			db, err := openTokenStore(ctx, *ldata)
			if err != nil {
				return err
			}
			defer db.Close()
			ts, err := db.ListTokens(ctx)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tROLE\tCREATED\tLAST USED\tEXPIRES")
			for _, t := range ts {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.CreatedAt.Format(time.RFC3339), orDash(t.LastUsedAt), orDash(t.ExpiresAt))
			}
			return w.Flush()
		},
	}

	rfs := flag.NewFlagSet("gate token revoke", flag.ContinueOnError)
	rdata := rfs.String("data", DefaultConfig().DataDir, "the gate's data directory")
	revoke := &ffcli.Command{
		Name: "revoke", ShortUsage: "gate token revoke --data DIR ID|NAME", ShortHelp: "revoke an API token: it is refused at once",
		FlagSet: rfs, Options: parseOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("name one token to revoke, by its id or name (gate token list)")
			}
			db, err := openTokenStore(ctx, *rdata)
			if err != nil {
				return err
			}
			defer db.Close()
			t, err := db.RevokeToken(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "revoked token %s (%s, %s)\n", t.ID, t.Name, t.Role)
			return nil
		},
	}
	return &ffcli.Command{
		Name: "token", ShortUsage: "gate token <create|list|revoke> [flags]", ShortHelp: "manage API tokens",
		Subcommands: []*ffcli.Command{create, list, revoke},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func orDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}
