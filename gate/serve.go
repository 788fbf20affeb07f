package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"golang.org/x/sync/errgroup"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/admission"
	"github.com/buildgate/buildgate/internal/alert"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/catalog"
	"github.com/buildgate/buildgate/internal/netguard"
	"github.com/buildgate/buildgate/internal/registry"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/server"
	"github.com/buildgate/buildgate/internal/server/anchore"
	"github.com/buildgate/buildgate/internal/server/console"
	"github.com/buildgate/buildgate/internal/server/harbor"
	"github.com/buildgate/buildgate/internal/server/openapi"
	"github.com/buildgate/buildgate/internal/store"
	"github.com/buildgate/buildgate/internal/vulndb"
)

// Config is gate serve's configuration: flags, then GATE_* environment
// variables, then an optional YAML file.
type Config struct {
	Addr            string
	DataDir         string
	Workers         int
	AnalysisTimeout time.Duration
	MaxLayerSize    int64
	MaxImageSize    int64
	// VerdictCacheSize bounds the verdicts kept decoded in memory, in bytes.
	VerdictCacheSize int64
	// MatchCacheSize bounds what packages matched in the DB in use, in
	// estimated bytes (vulndb.Options.MatchCacheSize).
	MatchCacheSize int64
	// DBWarmBudget bounds the matching a DB import or update does in the
	// new DB before the swap (vulndb.Options.WarmBudget).
	DBWarmBudget time.Duration
	// Unpack bounds what one image may unpack to (--max-unpacked-size,
	// --max-files, --max-file-size, --max-path-length, --max-layers,
	// --max-config-size, --max-manifest-size).
	Unpack catalog.Limits
	// LayerCacheSize bounds, in bytes, the files passes and unpacked tars
	// kept by layer diff ID, and the SBOMs kept by chain of diff IDs,
	// under DataDir/layer-cache; 0 keeps none.
	LayerCacheSize   int64
	DBUpdateURL      string
	DBUpdateInterval time.Duration
	// DBSyncInterval is how often a gate on a shared store looks for a
	// DB another replica imported or updated to.
	DBSyncInterval time.Duration
	LogFormat      string
	LogLevel       string
	// AdminToken is the admin token to install on first start instead of a
	// generated one (GATE_ADMIN_TOKEN).
	AdminToken string
	// ECREndpoint overrides the ECR API endpoint used to mint awsecr
	// registry tokens (GATE_ECR_ENDPOINT: a VPC endpoint, or a fake in tests).
	ECREndpoint string
	// MetricsPublic serves /metrics without a token
	// (GATE_METRICS_PUBLIC); by default it needs one, of either role.
	MetricsPublic bool
	// AllowPrivateNetworks lists the CIDR prefixes (comma-separated) that
	// outbound requests made for users may reach although they are
	// loopback, link-local, private or unique-local: registries, webhooks,
	// Slack, SMTP, the ECR endpoint and the DB update URL
	// (GATE_ALLOW_PRIVATE_NETWORKS). Empty: none.
	AllowPrivateNetworks string
	// JobLease is how long a claim on an analysis holds without a
	// heartbeat; JobAttempts bounds the claims of one image.
	JobLease    time.Duration
	JobAttempts int
	// Store is the store: sqlite:PATH or postgres://... (GATE_STORE;
	// default sqlite:<data>/buildgate.db).
	Store string
	// SecretKeyFile holds the key that seals stored secrets, instead of
	// GATE_SECRET_KEY or <data>/secret.key.
	SecretKeyFile string
	// Alerts configures subscriptions' tag polling and alert deliveries.
	Alerts AlertConfig
	// HTTP bounds request bodies, concurrent uploads and connection times.
	HTTP HTTPConfig
	// Admission configures the Kubernetes admission webhook; TLS the
	// gate's own HTTPS.
	Admission AdmissionConfig
	TLS       TLSConfig
	// ShutdownGrace bounds how long Close waits for requests, analyses and
	// background work (re-matches, re-evaluations, deliveries) to stop.
	ShutdownGrace time.Duration
}

// DefaultConfig returns the defaults of gate serve.
func DefaultConfig() Config {
	return Config{
		Addr:             "127.0.0.1:8080",
		DataDir:          "gate-data",
		Workers:          2,
		AnalysisTimeout:  10 * time.Minute,
		MaxLayerSize:     2 << 30,
		MaxImageSize:     8 << 30,
		VerdictCacheSize: analysis.DefaultVerdictCacheBytes,
		MatchCacheSize:   vulndb.DefaultMatchCacheSize,
		DBWarmBudget:     vulndb.DefaultWarmBudget,
		Unpack:           catalog.DefaultLimits(),
		LayerCacheSize:   2 << 30,
		DBUpdateURL:      vulndb.DefaultUpdateURL,
		DBUpdateInterval: 6 * time.Hour,
		DBSyncInterval:   30 * time.Second,
		LogFormat:        "text",
		LogLevel:         "info",
		Alerts:           defaultAlertConfig(),
		HTTP:             defaultHTTPConfig(),
		JobLease:         time.Minute,
		JobAttempts:      3,
		Admission:        defaultAdmissionConfig(),
		ShutdownGrace:    10 * time.Second,
	}
}

func (c *Config) flags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.Addr, "addr", d.Addr, "address to listen on")
	fs.StringVar(&c.DataDir, "data", d.DataDir, "data directory (SQLite file, vulnerability DB, work space)")
	fs.IntVar(&c.Workers, "workers", d.Workers, "concurrent analyses")
	fs.DurationVar(&c.AnalysisTimeout, "analysis-timeout", d.AnalysisTimeout, "time limit of one analysis")
	fs.DurationVar(&c.JobLease, "job-lease", d.JobLease, "how long a claimed analysis holds without a heartbeat; the work of a gate that died is taken again after it")
	fs.IntVar(&c.JobAttempts, "job-attempts", d.JobAttempts, "claims of one image before it fails with the reason of its last interrupted attempt")
	fs.StringVar(&c.Store, "store", "", "the store: sqlite:PATH or postgres://USER@HOST/DB (default sqlite:<data>/buildgate.db); PostgreSQL serves several replicas")
	fs.StringVar(&c.SecretKeyFile, "secret-key-file", "", "file with the key that seals stored secrets (default GATE_SECRET_KEY, else <data>/secret.key; required with PostgreSQL unless GATE_SECRET_KEY is set)")
	fs.Int64Var(&c.MaxLayerSize, "max-layer-size", d.MaxLayerSize, "largest compressed layer to pull, in bytes")
	fs.Int64Var(&c.MaxImageSize, "max-image-size", d.MaxImageSize, "largest compressed image to pull, in bytes")
	fs.Int64Var(&c.LayerCacheSize, "layer-cache-size", d.LayerCacheSize, "bytes of unpacked layers and their file lists, digests and secrets kept by layer diff ID in DATA/layer-cache, so that a layer is decompressed, hashed and searched once, and of the SBOMs of layer chains, so that an image on an analysed base is not cataloged again when its new layers add no package (0: none)")
	fs.Int64Var(&c.MatchCacheSize, "match-cache-size", d.MatchCacheSize, "what each package matched in the DB in use, kept so a package many images share is matched once per DB, with the metadata of what they match (a quarter), in estimated bytes (least recently used out first; 0 keeps nothing)")
	fs.DurationVar(&c.DBWarmBudget, "db-warm-budget", d.DBWarmBudget, "time a DB import or update spends, before it swaps the new DB in, matching in it the packages the match cache holds (most recently used first), so images built on what the gate has seen are not matched from scratch after an update (0: none)")
	fs.Int64Var(&c.VerdictCacheSize, "verdict-cache-size", d.VerdictCacheSize, "verdicts kept decoded in memory for checks, in bytes of their JSON (least recently used out first)")
	fs.Int64Var(&c.Unpack.MaxUnpackedSize, "max-unpacked-size", d.Unpack.MaxUnpackedSize, "largest total of an image's uncompressed layers, in bytes")
	fs.IntVar(&c.Unpack.MaxFiles, "max-files", d.Unpack.MaxFiles, "most entries in an image's layers")
	fs.Int64Var(&c.Unpack.MaxFileSize, "max-file-size", d.Unpack.MaxFileSize, "largest file in an image, in bytes")
	fs.IntVar(&c.Unpack.MaxPathLength, "max-path-length", d.Unpack.MaxPathLength, "longest path in an image's layers, in bytes")
	fs.IntVar(&c.Unpack.MaxLayers, "max-layers", d.Unpack.MaxLayers, "most layers in an image")
	fs.Int64Var(&c.Unpack.MaxConfigSize, "max-config-size", d.Unpack.MaxConfigSize, "largest image config, in bytes")
	fs.Int64Var(&c.Unpack.MaxManifestSize, "max-manifest-size", d.Unpack.MaxManifestSize, "largest image manifest, in bytes")
	fs.StringVar(&c.DBUpdateURL, "db-update-url", d.DBUpdateURL, "vulnerability DB listing (latest.json) to update from; empty: never")
	fs.DurationVar(&c.DBUpdateInterval, "db-update-interval", d.DBUpdateInterval, "how often to check for a DB update; 0: never")
	fs.DurationVar(&c.DBSyncInterval, "db-sync-interval", d.DBSyncInterval, "with a shared store (PostgreSQL), how often to load a DB another replica imported or updated to")
	fs.StringVar(&c.LogFormat, "log-format", d.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", d.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&c.AdminToken, "admin-token", "", "admin token to install on first start, at least 32 random bytes (default: generate and print one)")
	fs.StringVar(&c.ECREndpoint, "ecr-endpoint", "", "ECR API endpoint for awsecr registry tokens (default: AWS's for the registry's region)")
	fs.BoolVar(&c.MetricsPublic, "metrics-public", false, "serve /metrics without a token (default: a token of either role)")
	fs.StringVar(&c.AllowPrivateNetworks, "allow-private-networks", "", "comma-separated CIDR prefixes (e.g. 127.0.0.0/8,10.0.0.0/8) that registries, webhooks, Slack, SMTP, the ECR endpoint and the DB update URL may be in (default: none: loopback, link-local, private and unique-local destinations are refused)")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", d.ShutdownGrace, "how long shutdown waits for requests and background work to stop")
	c.Alerts.flags(fs)
	c.HTTP.flags(fs)
	c.Admission.flags(fs)
	c.TLS.flags(fs)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: want text or json", format)
}

func serveCommand() *ffcli.Command {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("gate serve", flag.ContinueOnError)
	cfg.flags(fs)
	fs.String("config", "", "YAML configuration file")
	return &ffcli.Command{
		Name: "serve", ShortUsage: "gate serve [--addr HOST:PORT] [--data DIR] [flags]",
		ShortHelp: "run the gate server", FlagSet: fs, Options: parseOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			log, err := newLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return err
			}
			m := &Main{Config: cfg, Log: log, Out: os.Stdout}
			if err := m.Open(ctx); err != nil {
				return errors.Join(err, m.Close())
			}
			err = m.Wait(ctx)
			m.Log.Info("gate stopping", "grace", m.Config.ShutdownGrace)
			return errors.Join(err, m.Close())
		},
	}
}

// Main is a running gate: a test can start one with Addr "127.0.0.1:0" and
// a temporary data directory.
type Main struct {
	Config Config
	Log    *slog.Logger
	// Out receives the one-time admin token.
	Out io.Writer
	// Now is the one clock of the gate: the store, the queue, verdicts,
	// alerts and the console all stamp and compare times with it (default:
	// the wall clock, in UTC).
	Now func() time.Time

	Store    store.Store
	VulnDB   *vulndb.Manager
	Analysis *analysis.Service
	Verdicts *analysis.Verdicts
	Server   *server.Server
	// Registries keeps registry credentials; RegistryAuth serves them to pulls.
	Registries   *analysis.Registries
	RegistryAuth *registry.Auth
	// Alerts keeps alerts, channels, subscriptions and runtime inventories.
	Alerts *alert.Service
	// Admission answers Kubernetes admission reviews.
	Admission *admission.Service
	// URL is the server's base URL once Open returns.
	URL string
	// Guard checks every outbound connection made for users.
	Guard *netguard.Guard

	ln     net.Listener
	http   *http.Server
	cancel context.CancelFunc
	// sharedStore says other gates may share the store (PostgreSQL).
	sharedStore bool
	// group owns every goroutine the gate runs; runCtx is its context,
	// ended by Close or by the first part that fails.
	group  *errgroup.Group
	runCtx context.Context
	// warm is closed once the cataloger is prepared (see server.Server.Warm).
	warm chan struct{}
}

// Open opens the store and the DB, installs the first admin token, and
// starts the workers, the DB updater and the HTTP server.
func (m *Main) Open(ctx context.Context) error {
	c := m.Config
	if m.Log == nil {
		m.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if m.Out == nil {
		m.Out = io.Discard
	}
	if m.Now == nil {
		m.Now = func() time.Time { return time.Now().UTC() }
	}
	if err := c.HTTP.validate(); err != nil {
		return err
	}
	if c.VerdictCacheSize < 0 || c.MatchCacheSize < 0 {
		return fmt.Errorf("invalid --verdict-cache-size %d or --match-cache-size %d: want 0 or more bytes", c.VerdictCacheSize, c.MatchCacheSize)
	}
	if c.DBWarmBudget < 0 {
		return fmt.Errorf("invalid --db-warm-budget %s: want 0 or a positive duration", c.DBWarmBudget)
	}
	if c.DBSyncInterval <= 0 {
		return fmt.Errorf("invalid --db-sync-interval %s: want a positive duration", c.DBSyncInterval)
	}
	if c.LayerCacheSize < 0 {
		return fmt.Errorf("invalid --layer-cache-size %d: want 0 (no cache) or a size in bytes", c.LayerCacheSize)
	}
	if c.AdminToken != "" {
		if err := server.CheckSuppliedToken(c.AdminToken); err != nil {
			return err
		}
	}
	if err := prepareDataDir(c.DataDir); err != nil {
		return err
	}
	if err := secureDataDir(c.DataDir, m.Log); err != nil {
		return err
	}
	allow, err := netguard.ParseAllow(c.AllowPrivateNetworks)
	if err != nil {
		return fmt.Errorf("--allow-private-networks: %w", err)
	}
	m.Guard = netguard.New(allow)
	spec := c.Store
	if spec == "" {
		spec = defaultStore(c.DataDir)
	}
	db, err := openStore(ctx, spec, m.Now)
	if err != nil {
		return err
	}
	m.Store, m.sharedStore = db, db.shared
	if err := m.ensureAdminToken(ctx); err != nil {
		return err
	}
	if err := m.ensureAdmissionToken(ctx); err != nil {
		return err
	}
	if m.VulnDB, err = vulndb.Open(c.DataDir, m.dbOptions()); err != nil {
		return err
	}
	sealer, err := m.openSealer(ctx)
	if err != nil {
		return err
	}
	if err := m.openRegistries(ctx, sealer); err != nil {
		return err
	}
	cat := catalogAdapter{limits: c.Unpack, policies: m.Store}
	if c.LayerCacheSize > 0 {
		if cat.layers, err = catalog.OpenLayerCache(filepath.Join(c.DataDir, "layer-cache"), c.LayerCacheSize); err != nil {
			return err
		}
	}
	rc := registry.Config{
		Keychain: m.RegistryAuth.Keychain(), Transport: m.RegistryAuth.Transport(),
		Platform:     registry.DefaultConfig().Platform,
		MaxLayerSize: c.MaxLayerSize, MaxImageSize: c.MaxImageSize, UserAgent: "buildgate/" + version,
		Log: m.Log,
	}
	reg := registryAdapter{client: registry.New(rc)}
	cat.registry = reg
	m.Verdicts = analysis.NewVerdicts(m.Store, m.VulnDB, m.Log)
	m.Verdicts.Now = m.Now
	m.Verdicts.SetVEX(m.Store, vexEngine{})
	m.Verdicts.SetCacheBytes(c.VerdictCacheSize)
	if err := m.Verdicts.InstallDefault(ctx); err != nil {
		return err
	}
	// the first analysis would otherwise build syft's license scanner;
	// the gate is ready once it is built
	m.warm = make(chan struct{})
	go func() {
		defer close(m.warm)
		if err := catalog.Warm(); err != nil {
			m.Log.Warn("preparing the cataloger", "err", err)
		}
	}()
	metrics := server.NewMetrics(m.Store.QueueDepth, func() time.Time { return m.VulnDB.Info().Built })
	acfg := analysis.Config{
		Workers: c.Workers, Timeout: c.AnalysisTimeout, Lease: c.JobLease, MaxAttempts: c.JobAttempts,
		UploadDir: filepath.Join(c.DataDir, "uploads"),
		Now:       m.Now,
	}
	if m.sharedStore {
		// Any replica may claim an upload's job: the archive goes to
		// the store.
		acfg.Uploads = m.Store
	}
	// a pipeline waiting on an image hears of its outcome at once
	changes := &server.Changes{}
	m.Analysis = analysis.New(acfg, m.Store, reg, cat, m.VulnDB, analysis.Observer{
		Finished: func(digest string, outcome buildgate.Status, d time.Duration) {
			changes.Notify()
			metrics.ObserveAnalysis(digest, outcome, d)
			m.alertFinished(digest, outcome, d)
			m.admissionFinished()
		},
		Analyzed:     m.Verdicts.Reevaluate,
		AnalyzedWith: m.Verdicts.EvaluateAnalysis,
		Rematched: func(ctx context.Context, digest string, before, after []buildgate.Match, db buildgate.DBInfo) {
			metrics.ObserveRematch()
			m.alertRematched(ctx, digest, before, after, db)
		},
	}, m.Log)
	m.Server = server.New(m.Analysis, m.Store, dbAdapter{m.VulnDB, c.DBUpdateURL}, sbomAdapter{}, metrics, m.Log)
	m.Server.AfterImport = m.requestRematch
	m.Server.Changes = changes
	m.Server.Version = version
	m.Server.SetLimits(c.HTTP.limits())
	m.Server.BasicChallenge = c.HTTP.AnchoreBasicChallenge
	m.Server.MetricsPublic = c.MetricsPublic
	m.Server.Warm = m.warm
	m.Server.RoutePolicies(m.Verdicts, m.Store)
	m.Server.RouteVEX(m.Verdicts)
	m.Server.RouteUploads(m.Analysis)
	m.Server.RouteRegistries(m.Registries)
	m.Server.RouteTokens(m.Store, m.Now)
	if err := m.openAlerts(ctx, reg, sealer); err != nil {
		return err
	}
	m.openAdmission(reg)
	if err := openapi.Route(m.Server.Echo()); err != nil {
		return err
	}
	// The Anchore v1 subset joins last: its /v1 dispatcher reads the routes above.
	anchore.Route(m.Server.Echo(), anchore.Config{
		Images: m.Analysis, Store: m.Store, Verdicts: m.Verdicts, Registries: m.Registries,
		DB: dbAdapter{m.VulnDB, c.DBUpdateURL}, Version: version, Log: m.Log,
		BasicChallenge: c.HTTP.AnchoreBasicChallenge, Unavailable: m.Server.Unavailable,
	})
	// Harbor's scanner adapter API under /harbor.
	harbor.Route(m.Server.Echo(), harbor.Config{
		Images: m.Analysis, Store: m.Store, SBOMs: sbomAdapter{}, DB: dbAdapter{m.VulnDB, c.DBUpdateURL},
		Version: version, Log: m.Log, Unavailable: m.Server.Unavailable,
	})
	// The web console: pages at / and /ui/ through the same services.
	console.Route(m.Server.Echo(), console.Config{
		Images: m.Analysis, Store: m.Store, Policies: m.Verdicts, Registries: m.Registries, Alerts: m.Alerts,
		Admission: m.Admission, API: m.Server, HashToken: server.HashToken, Log: m.Log, Now: m.Now,
		Unavailable: m.Server.Unavailable,
	})

	tlsConfig, err := c.TLS.serverTLS(m.Log)
	if err != nil {
		return err
	}
	if m.ln, err = net.Listen("tcp", c.Addr); err != nil {
		return fmt.Errorf("listening on %s: %w", c.Addr, err)
	}
	m.URL = "http://" + m.ln.Addr().String()
	if tlsConfig != nil {
		m.ln = tls.NewListener(m.ln, tlsConfig)
		m.URL = "https://" + m.ln.Addr().String()
	}
	if m.Admission.UIURL == "" {
		m.Admission.UIURL = m.URL
	}
	m.start(ctx)
	m.Log.Info("gate serving", "addr", m.ln.Addr().String(), "data", c.DataDir, "workers", c.Workers, "db_ready", m.VulnDB.Ready())
	return nil
}

// start runs the HTTP server, the analysis workers, re-matches,
// re-evaluations, the DB updater and loader and alerts, all in m.group.
func (m *Main) start(ctx context.Context) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.group, m.runCtx = errgroup.WithContext(runCtx)
	c := m.Config.HTTP
	m.http = &http.Server{
		Handler: m.Server, ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout, IdleTimeout: c.IdleTimeout,
	}
	draining := make(chan struct{})
	m.Server.Draining = draining
	// once: Shutdown runs its hooks on every call
	m.http.RegisterOnShutdown(sync.OnceFunc(func() { close(draining) }))
	m.group.Go(func() error {
		if err := m.http.Serve(m.ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving http: %w", err)
		}
		return nil
	})
	m.group.Go(func() error { return m.Analysis.Run(m.runCtx) })
	m.group.Go(func() error { m.Analysis.RunRematches(m.runCtx); return nil })
	m.group.Go(func() error { m.Verdicts.Run(m.runCtx); return nil })
	m.group.Go(func() error { m.updateDB(m.runCtx); return nil })
	m.group.Go(func() error { m.syncDB(m.runCtx); return nil })
	m.group.Go(func() error { m.Alerts.Run(m.runCtx); return nil })
}

// Wait blocks until ctx ends or a part of the gate fails.
func (m *Main) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-m.runCtx.Done():
		return context.Cause(m.runCtx)
	}
}

// Close stops the server and every background part within the shutdown
// grace period (an analysis cut short stays queued, a re-match cut short
// stays pending, for the next start) and closes the store and the DB.
func (m *Main) Close() error {
	var errs []error
	if m.group != nil {
		grace := cmp.Or(m.Config.ShutdownGrace, DefaultConfig().ShutdownGrace)
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := m.http.Shutdown(sctx); err != nil {
			m.Log.Warn("closing http connections", "err", err)
		}
		m.cancel()
		stopped := make(chan error, 1)
		go func() { stopped <- m.group.Wait() }()
		select {
		case err := <-stopped:
			if err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, err)
			}
		case <-sctx.Done():
			// Closing the store under running work is what the grace
			// period exists to avoid: report it and leave the files be.
			return fmt.Errorf("background work did not stop within the shutdown grace period (%s; --shutdown-grace)", grace)
		}
	}
	if m.Admission != nil {
		m.Admission.Close()
	}
	if m.VulnDB != nil {
		errs = append(errs, m.VulnDB.Close())
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	return errors.Join(errs...)
}

func (m *Main) ensureAdminToken(ctx context.Context) error {
	n, err := m.Store.CountTokens(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	secret, hash := m.Config.AdminToken, ""
	if secret != "" {
		hash = server.HashToken(secret)
	} else {
		secret, hash = server.NewToken()
	}
	tok, err := server.NewTokenRecord("admin", buildgate.RoleAdmin, 0, m.Now())
	if err != nil {
		return err
	}
	if err := m.Store.CreateToken(ctx, tok, hash); err != nil {
		// Replicas starting at once on one store race to install it.
		if n, cerr := m.Store.CountTokens(ctx); cerr == nil && n > 0 && m.Config.AdminToken != "" {
			return nil
		}
		return err
	}
	if m.Config.AdminToken == "" {
		fmt.Fprintf(m.Out, "buildgate admin token (shown once, store it now): %s\n", secret)
	}
	m.Log.Info("installed the first admin token", "name", tok.Name)
	return nil
}

// updateDB checks for a DB update now, then every interval; a new DB
// re-matches every stored SBOM. Of gates sharing a store, the one that
// claims the round checks; the others load what it publishes.
func (m *Main) updateDB(ctx context.Context) {
	c := m.Config
	if c.DBUpdateURL == "" || c.DBUpdateInterval <= 0 {
		if !m.VulnDB.Ready() {
			m.Log.Warn("no vulnerability DB loaded and updates are off: import one with gate db import or POST /v1/db/import")
		}
		return
	}
	check := func() {
		if m.sharedStore {
			claimed, err := m.Store.ClaimRound(ctx, "db-update", m.Now(), c.DBUpdateInterval*9/10)
			if err != nil || !claimed {
				if err != nil && ctx.Err() == nil {
					m.Log.Warn("claiming the round of DB update checks", "err", err)
				}
				return
			}
		}
		updated, err := m.VulnDB.Update(ctx, c.DBUpdateURL)
		switch {
		case err != nil:
			m.Log.Warn("vulnerability DB update failed; keeping the current DB", "url", secret.RedactURL(c.DBUpdateURL),
				"err", secret.Redact(err.Error(), secret.URLSecrets(c.DBUpdateURL)...))
		case updated:
			m.Log.Info("vulnerability DB updated", "built", m.VulnDB.Info().Built)
			if err := m.requestRematch(ctx); err != nil {
				m.Log.Error("requesting the re-match of stored SBOMs", "err", err)
			}
		}
	}
	check()
	t := time.NewTicker(c.DBUpdateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}

// requestRematch records a re-match of every stored SBOM against the
// current DB; m.Analysis.RunRematches does it.
func (m *Main) requestRematch(ctx context.Context) error {
	return m.Analysis.RequestRematch(ctx, m.VulnDB.Info().Built)
}

func (m *Main) dbOptions() vulndb.Options {
	o := vulndb.DefaultOptions()
	o.HTTPClient = m.Guard.Client(o.HTTPClient.Timeout, 10)
	o.Now = m.Now
	o.MatchCacheSize = m.Config.MatchCacheSize
	o.WarmBudget = m.Config.DBWarmBudget
	if m.sharedStore {
		o.Publish = m.publishDB
	}
	return o
}
