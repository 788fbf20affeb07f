package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/store"
	"github.com/buildgate/buildgate/internal/store/postgres"
	"github.com/buildgate/buildgate/internal/store/sqlite"
	"github.com/buildgate/buildgate/internal/store/sqlstore"
)

// Every adapter serves the whole contract.
var (
	_ store.Store = (*sqlite.DB)(nil)
	_ store.Store = (*postgres.DB)(nil)
)

// openedStore is a store with its engine's SQL, for gate store copy.
type openedStore struct {
	store.Store
	sql *sqlstore.DB
	// shared says several gates may use the store at once (PostgreSQL).
	shared bool
}

// defaultStore is the store of a gate whose --store is empty.
func defaultStore(dataDir string) string { return "sqlite:" + filepath.Join(dataDir, "buildgate.db") }

// openStore opens the store a --store value names: sqlite:PATH or a
// postgres:// (postgresql://) URL.
func openStore(ctx context.Context, spec string, now func() time.Time) (*openedStore, error) {
	var opts []sqlstore.Option
	if now != nil {
		opts = append(opts, sqlstore.WithClock(now))
	}
	switch {
	case strings.HasPrefix(spec, "sqlite:"):
		path := strings.TrimPrefix(spec, "sqlite:")
		if path == "" {
			return nil, fmt.Errorf("invalid --store %q: sqlite: needs a file path (sqlite:gate-data/buildgate.db)", spec)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating the directory of %s: %w", path, err)
		}
		db, err := sqlite.Open(ctx, path, opts...)
		if err != nil {
			return nil, err
		}
		return &openedStore{Store: db, sql: db.DB}, nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		db, err := postgres.Open(ctx, spec, opts...)
		if err != nil {
			return nil, err
		}
		return &openedStore{Store: db, sql: db.DB, shared: true}, nil
	}
	return nil, fmt.Errorf("invalid --store %q: want sqlite:PATH or postgres://USER@HOST/DB", postgres.Redact(spec))
}

// openSealer loads the key that seals stored secrets (loadSealer), binds
// every value sealed before values were bound to their record, and, when
// the key was given rather than found in the data directory, checks that
// it opens what the store holds.
//
// Legacy values are bound here, at start, rather than on their next
// write: a registry password or a channel secret may never be written
// again, and until it is bound it could be moved into another record.
func (m *Main) openSealer(ctx context.Context) (*secret.Sealer, error) {
	sealer, src, err := m.loadSealer()
	if err != nil {
		return nil, err
	}
	switch src {
	case secret.SourceCreated:
		m.Log.Info("created the secret key file that seals stored secrets; back it up with the data",
			"path", filepath.Join(m.Config.DataDir, secret.KeyFileName), "key_id", sealer.KeyID())
	case secret.SourceEnv:
		m.Log.Info("sealing stored secrets with the key from "+secret.EnvKey, "key_id", sealer.KeyID())
	}
	n, err := m.Store.ResealSecrets(ctx, func(sealed string, rec secret.Record) (string, error) {
		if !secret.IsLegacy(sealed) {
			return sealed, nil
		}
		bound, err := sealer.Reseal(sealed, rec, sealer)
		if err != nil {
			// Left as it is: its use (or the check below) says why.
			m.Log.Warn("a stored secret sealed before records were bound cannot be opened", "record", rec.String(), "err", err)
			return sealed, nil
		}
		return bound, nil
	})
	if err != nil {
		return nil, fmt.Errorf("binding stored secrets to their records: %w", err)
	}
	if n > 0 {
		m.Log.Info("bound stored secrets sealed by an older gate to their records", "secrets", n)
	}
	if src == secret.SourceFile && m.Config.SecretKeyFile != "" || src == secret.SourceEnv && m.sharedStore {
		if err := m.checkSealer(ctx, sealer); err != nil {
			return nil, err
		}
	}
	return sealer, nil
}

// loadSealer loads the key that seals stored secrets. A gate on a shared
// store (PostgreSQL) takes it from GATE_SECRET_KEY or --secret-key-file
// only, never a file it would create, since every replica needs the same
// key.
func (m *Main) loadSealer() (*secret.Sealer, secret.Source, error) {
	if m.Config.SecretKeyFile != "" {
		k, err := secret.ReadKeyFile(m.Config.SecretKeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("reading --secret-key-file: %w", err)
		}
		s, err := secret.NewSealer(k)
		return s, secret.SourceFile, err
	}
	if !m.sharedStore {
		return secret.Load(m.Config.DataDir, os.Getenv(secret.EnvKey))
	}
	env := os.Getenv(secret.EnvKey)
	if env == "" {
		return nil, "", fmt.Errorf("a PostgreSQL store needs the key that seals stored secrets, the same on every replica: set %s or --secret-key-file", secret.EnvKey)
	}
	k, err := secret.ParseKey(env)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", secret.EnvKey, err)
	}
	s, err := secret.NewSealer(k)
	return s, secret.SourceEnv, err
}

// checkSealer fails when a secret the store holds is sealed under a key s
// does not have. A value that does not open for another reason (moved into
// another record, corrupt) fails where it is used, and names its record.
func (m *Main) checkSealer(ctx context.Context, s *secret.Sealer) error {
	regs, err := m.Store.RegistrySecrets(ctx)
	if err != nil {
		return err
	}
	for r, sealed := range regs {
		if _, err := s.Open(sealed, secret.RegistryPassword(r)); errors.Is(err, secret.ErrUnknownKey) {
			return fmt.Errorf("the secret key (id %s) cannot open the stored credential of registry %q: start the gate with the key the store's secrets were sealed with: %w", s.KeyID(), r, err)
		}
	}
	chans, err := m.Store.ListChannels(ctx)
	if err != nil {
		return err
	}
	for _, c := range chans {
		sealed, err := m.Store.ChannelSecret(ctx, c.ID)
		if err != nil || sealed == "" {
			continue
		}
		if _, err := s.Open(sealed, secret.ChannelSecret(c.ID)); errors.Is(err, secret.ErrUnknownKey) {
			return fmt.Errorf("the secret key (id %s) cannot open the stored secret of channel %q: start the gate with the key the store's secrets were sealed with: %w", s.KeyID(), c.Name, err)
		}
	}
	return nil
}

func storeCommand() *ffcli.Command {
	mfs := flag.NewFlagSet("gate store migrate", flag.ContinueOnError)
	mstore := mfs.String("store", "", "the store: sqlite:PATH or postgres://USER@HOST/DB (required)")
	migrate := &ffcli.Command{
		Name: "migrate", ShortUsage: "gate store migrate --store URL",
		ShortHelp: "apply the store's migrations (gate serve also does, under a lock)",
		FlagSet:   mfs, Options: parseOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			if *mstore == "" {
				return errors.New("--store is required")
			}
			db, err := openStore(ctx, *mstore, nil)
			if err != nil {
				return err
			}
			fmt.Fprintln(os.Stdout, "store migrated")
			return db.Close()
		},
	}
	cfs := flag.NewFlagSet("gate store copy", flag.ContinueOnError)
	from := cfs.String("from", "", "the store to copy: sqlite:PATH or postgres://... (required)")
	to := cfs.String("to", "", "the store to fill: sqlite:PATH or postgres://... (required)")
	allow := cfs.Bool("allow-non-empty", false, "copy into a store that holds rows, keeping its rows where keys clash")
	cfs.BoolVar(allow, "force", false, "same as --allow-non-empty")
	cp := &ffcli.Command{
		Name: "copy", ShortUsage: "gate store copy --from sqlite:old/buildgate.db --to postgres://...",
		ShortHelp: "copy every row of one store into another (stop the gates first)",
		LongHelp: "Images, SBOMs, analyses, verdicts, policies with their versions, registry credentials and channel\n" +
			"secrets (still sealed: start the new gates with the same key), tokens, subscriptions, alerts, runtime\n" +
			"inventories and the outbox, in one transaction of the target. Prints the rows per table.",
		FlagSet: cfs, Options: parseOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			return copyStore(ctx, *from, *to, *allow, os.Stdout)
		},
	}
	return &ffcli.Command{
		Name: "store", ShortUsage: "gate store <migrate|copy> [flags]", ShortHelp: "migrate or copy the gate's store",
		Subcommands: []*ffcli.Command{migrate, cp},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func copyStore(ctx context.Context, from, to string, allowNonEmpty bool, out io.Writer) error {
	if from == "" || to == "" {
		return errors.New("--from and --to are required")
	}
	src, err := openStore(ctx, from, nil)
	if err != nil {
		return fmt.Errorf("opening --from: %w", err)
	}
	defer src.Close()
	dst, err := openStore(ctx, to, nil)
	if err != nil {
		return fmt.Errorf("opening --to: %w", err)
	}
	defer dst.Close()
	counts, err := sqlstore.Copy(ctx, dst.sql, src.sql, allowNonEmpty)
	if err != nil {
		return fmt.Errorf("nothing was copied: %w", err)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "table\tsource\tcopied\t")
	for _, c := range counts {
		fmt.Fprintf(w, "%s\t%d\t%d\t\n", c.Table, c.Source, c.Copied)
	}
	return w.Flush()
}
