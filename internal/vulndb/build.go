package vulndb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	grypedb "github.com/anchore/grype/grype/db"
	"github.com/anchore/grype/grype/db/provider"
	v6 "github.com/anchore/grype/grype/db/v6"
	v6build "github.com/anchore/grype/grype/db/v6/build"
	"github.com/anchore/grype/grype/db/v6/distribution"

	"github.com/buildgate/buildgate"
)

// OSVSchemaURL is the vunnel envelope schema that bare OSV records are
// wrapped with, so grype's OSV transformer picks them up.
const OSVSchemaURL = "https://raw.githubusercontent.com/anchore/vunnel/main/schema/vulnerability/osv/schema-1.3.1.json"

// workspaceStateSchema is the vunnel provider-workspace-state schema that
// the OSV workspaces we write declare.
var workspaceStateSchema = provider.Schema{
	Version: "1.0.3",
	URL:     "https://raw.githubusercontent.com/anchore/vunnel/main/schema/provider-workspace-state/schema-1.0.3.json",
}

// grype-db's build defaults (grype-db cmd/grype-db/cli/options.DefaultBuild).
var (
	buildCPEParts            = []string{"a", "h", "o"}
	buildInferNVDFixVersions = true
)

// ProviderDir is one source of vulnerability data for Build.
type ProviderDir struct {
	// Name is the provider's name. For a vunnel workspace it defaults to
	// (and must equal) the "provider" of its metadata.json; for a directory
	// of OSV records it defaults to the directory's base name.
	Name string
	// Dir is the directory: a vunnel provider workspace (metadata.json and
	// results/) or a directory of bare OSV records (*.json).
	Dir string
}

// BuildConfig says what Build builds.
type BuildConfig struct {
	// OutDir receives vulnerability-db_*.tar.gz and latest.json. It is
	// created if missing.
	OutDir string
	// Providers are vunnel provider workspaces. They are only read.
	Providers []ProviderDir
	// OSV are directories of bare OSV records, each wrapped into a provider
	// named after the directory (or ProviderDir.Name).
	OSV []ProviderDir
	// Timestamp is the DB's build time; zero means now. It is what Update
	// compares to decide whether a listed DB is newer.
	Timestamp time.Time
}

// BuildResult describes a built DB archive.
type BuildResult struct {
	ArchivePath string
	ListingPath string
	Built       time.Time
	// Providers are in the order they were processed, with the number of
	// records each contributed to the DB.
	Providers []buildgate.Provider
	Distros   []string
}

// buildMu serialises Build: grype's CreateArchive changes the process's
// working directory while it writes the tarball.
var buildMu sync.Mutex

// Build builds a grype v6 vulnerability DB from vunnel workspaces and OSV
// record directories with grype's own builder, then packages it with
// grype's CreateArchive as <OutDir>/vulnerability-db_*.tar.gz plus the
// <OutDir>/latest.json listing that Update reads.
//
// Providers are processed in grype-db's order: nvd first (so its severities
// fill records whose own severity is unknown), eol last, the rest in the
// order given (workspaces, then OSV directories).
//
// Build holds a package lock while it runs: grype's CreateArchive changes the
// process's working directory for the duration of the tar write, so callers
// elsewhere in the process should not rely on relative paths meanwhile.
func Build(ctx context.Context, cfg BuildConfig) (*BuildResult, error) {
	if cfg.OutDir == "" {
		return nil, errors.New("building db: no output directory")
	}
	if len(cfg.Providers)+len(cfg.OSV) == 0 {
		return nil, errors.New("building db: no providers")
	}
	outDir, err := filepath.Abs(cfg.OutDir)
	if err != nil {
		return nil, fmt.Errorf("resolving output directory %q: %w", cfg.OutDir, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating output directory %q: %w", outDir, err)
	}

	work, err := os.MkdirTemp(outDir, ".build-")
	if err != nil {
		return nil, fmt.Errorf("creating build directory: %w", err)
	}
	defer os.RemoveAll(work)

	var states provider.States
	seen := map[string]string{}
	add := func(st *provider.State, dir string) error {
		if prev, ok := seen[st.Provider]; ok {
			return fmt.Errorf("provider %q: given twice (%s and %s)", st.Provider, prev, dir)
		}
		seen[st.Provider] = dir
		states = append(states, *st)
		return nil
	}
	for _, p := range cfg.Providers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st, err := readWorkspace(p, filepath.Join(work, "workspaces"))
		if err != nil {
			return nil, err
		}
		if err := add(st, p.Dir); err != nil {
			return nil, err
		}
	}
	for _, p := range cfg.OSV {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st, err := wrapOSV(p, filepath.Join(work, "osv"))
		if err != nil {
			return nil, err
		}
		if err := add(st, p.Dir); err != nil {
			return nil, err
		}
	}
	states = orderStates(states)

	dbDir := filepath.Join(work, "db")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating build directory: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	buildMu.Lock()
	defer buildMu.Unlock()

	err = grypedb.Build(grypedb.BuildConfig{
		SchemaVersion:       v6.ModelVersion,
		Directory:           dbDir,
		States:              states,
		Timestamp:           cfg.Timestamp,
		IncludeCPEParts:     buildCPEParts,
		InferNVDFixVersions: buildInferNVDFixVersions,
	})
	if err != nil {
		return nil, fmt.Errorf("building db from providers %s: %w", strings.Join(states.Names(), ", "), err)
	}
	if !cfg.Timestamp.IsZero() {
		if err := setBuildTimestamp(filepath.Join(dbDir, v6.VulnerabilityDBFileName), cfg.Timestamp); err != nil {
			return nil, err
		}
	}

	info, err := describeDir(dbDir)
	if err != nil {
		return nil, fmt.Errorf("reading built db: %w", err)
	}
	// report providers in processing order
	byName := map[string]buildgate.Provider{}
	for _, p := range info.Providers {
		byName[p.Name] = p
	}
	providers := make([]buildgate.Provider, 0, len(states))
	for _, st := range states {
		p, ok := byName[st.Provider]
		if !ok {
			p = buildgate.Provider{Name: st.Provider}
		}
		providers = append(providers, p)
	}

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := v6build.CreateArchive(dbDir, "tar.gz", nil); err != nil {
		return nil, fmt.Errorf("packaging db: %w", err)
	}

	listing, err := distribution.NewLatestFromFile(osFS, filepath.Join(dbDir, distribution.LatestFileName))
	if err != nil || listing == nil {
		return nil, fmt.Errorf("reading written listing: %w", errors.Join(err, errors.New("empty listing")))
	}
	archivePath := filepath.Join(outDir, listing.Path)
	if err := os.Rename(filepath.Join(dbDir, listing.Path), archivePath); err != nil {
		return nil, fmt.Errorf("moving archive into %q: %w", outDir, err)
	}
	listingPath := filepath.Join(outDir, distribution.LatestFileName)
	if err := os.Rename(filepath.Join(dbDir, distribution.LatestFileName), listingPath); err != nil {
		return nil, fmt.Errorf("moving listing into %q: %w", outDir, err)
	}

	return &BuildResult{
		ArchivePath: archivePath,
		ListingPath: listingPath,
		Built:       info.Built,
		Providers:   providers,
		Distros:     info.Distros,
	}, nil
}

// orderStates puts nvd first and eol last, keeping the given order of the
// rest, as grype-db does (grype-db pkg/provider/providers.New; grype's
// processors note that the EOL processor only updates existing OS rows).
func orderStates(states provider.States) provider.States {
	rank := func(s provider.State) int {
		switch s.Provider {
		case "nvd":
			return 0
		case "eol":
			return 2
		}
		return 1
	}
	out := append(provider.States(nil), states...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// readWorkspace reads a vunnel workspace's state. grype only reads it, unless
// the workspace has no listing file: then it is copied under scratch and the
// listing is generated there.
func readWorkspace(p ProviderDir, scratch string) (*provider.State, error) {
	dir, err := checkDir(p)
	if err != nil {
		return nil, err
	}
	ws := provider.NewWorkspaceFromExisting(dir)
	if _, err := os.Stat(ws.StatePath()); err != nil {
		return nil, fmt.Errorf("provider %q (%s): missing metadata.json: %w", p.label(), dir, err)
	}
	st, err := ws.ReadState()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("provider %q (%s): reading metadata.json: %w", p.label(), dir, err)
	}
	if err != nil || st.Listing == nil {
		// no listing file (or none declared): generate one in a copy
		if st, err = relist(p, ws, scratch); err != nil {
			return nil, err
		}
	}
	if st.Provider == "" {
		return nil, fmt.Errorf("provider %q (%s): metadata.json names no provider", p.label(), dir)
	}
	if p.Name != "" && p.Name != st.Provider {
		return nil, fmt.Errorf("provider %q (%s): metadata.json says provider %q", p.Name, dir, st.Provider)
	}
	if len(st.ResultPaths()) == 0 {
		return nil, fmt.Errorf("provider %q (%s): no records", st.Provider, dir)
	}
	if err := st.Verify(); err != nil {
		return nil, fmt.Errorf("provider %q (%s): %w", st.Provider, dir, err)
	}
	return st, nil
}

// relist copies a workspace without a listing file to scratch, generates the
// listing with grype and records it in the copy's metadata.json.
func relist(p ProviderDir, ws provider.Workspace, scratch string) (*provider.State, error) {
	dst := filepath.Join(scratch, filepath.Base(ws.Path()))
	if err := os.CopyFS(dst, os.DirFS(ws.Path())); err != nil {
		return nil, fmt.Errorf("provider %q (%s): copying workspace: %w", p.label(), ws.Path(), err)
	}
	copied := provider.NewWorkspaceFromExisting(dst)
	if err := copied.EnsureListingFile(); err != nil {
		return nil, fmt.Errorf("provider %q (%s): writing listing: %w", p.label(), ws.Path(), err)
	}
	raw, err := os.ReadFile(copied.StatePath())
	if err != nil {
		return nil, fmt.Errorf("provider %q (%s): %w", p.label(), ws.Path(), err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("provider %q (%s): reading metadata.json: %w", p.label(), ws.Path(), err)
	}
	listing, err := provider.NewFile(copied.ListingPath())
	if err != nil {
		return nil, fmt.Errorf("provider %q (%s): hashing listing: %w", p.label(), ws.Path(), err)
	}
	listing.Path = "results/listing.xxh64"
	doc["listing"] = listing
	raw, err = json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(copied.StatePath(), raw, 0o600); err != nil {
		return nil, fmt.Errorf("provider %q (%s): %w", p.label(), ws.Path(), err)
	}
	st, err := copied.ReadState()
	if err != nil {
		return nil, fmt.Errorf("provider %q (%s): reading metadata.json: %w", p.label(), ws.Path(), err)
	}
	return st, nil
}

// osvRecord is the part of an OSV record Build looks at.
type osvRecord struct {
	ID        string    `json:"id"`
	Modified  time.Time `json:"modified"`
	Published time.Time `json:"published"`
}

// wrapOSV writes a vunnel workspace under scratch holding every *.json OSV
// record of p.Dir wrapped in a vunnel envelope, with grype's WorkspaceWriter.
// The provider's capture date is the newest modified/published date found.
func wrapOSV(p ProviderDir, scratch string) (*provider.State, error) {
	dir, err := checkDir(p)
	if err != nil {
		return nil, err
	}
	name := p.Name
	if name == "" {
		name = filepath.Base(dir)
	}
	w := provider.NewWorkspaceWriter(scratch, name)

	var files []provider.File
	var newest time.Time
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".json") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var rec osvRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("%s: not an OSV record: %w", path, err)
		}
		if rec.ID == "" {
			return fmt.Errorf("%s: OSV record has no id", path)
		}
		for _, t := range []time.Time{rec.Modified, rec.Published} {
			if t.After(newest) {
				newest = t
			}
		}
		envelope, err := json.Marshal(struct {
			Identifier string          `json:"identifier"`
			Schema     string          `json:"schema"`
			Item       json.RawMessage `json:"item"`
		}{rec.ID, OSVSchemaURL, raw})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		f, err := w.WriteResult(rec.ID+".json", envelope)
		if err != nil {
			return err
		}
		files = append(files, *f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("provider %q (%s): %w", name, dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("provider %q (%s): no records (no *.json OSV files)", name, dir)
	}
	if err := w.WriteListing(files); err != nil {
		return nil, fmt.Errorf("provider %q (%s): %w", name, dir, err)
	}
	listing, err := provider.NewFile(w.ListingPath())
	if err != nil {
		return nil, fmt.Errorf("provider %q (%s): hashing listing: %w", name, dir, err)
	}
	listing.Path = "results/listing.xxh64"
	if newest.IsZero() {
		newest = time.Now()
	}
	err = w.WriteState(provider.State{
		Provider:  name,
		Version:   1,
		Processor: "buildgate vulndb (bare OSV records)",
		Schema:    workspaceStateSchema,
		URLs:      []string{dir},
		Timestamp: newest.UTC(),
		Listing:   listing,
		Store:     "flat-file",
	})
	if err != nil {
		return nil, fmt.Errorf("provider %q (%s): %w", name, dir, err)
	}
	st, err := provider.ReadState(filepath.Join(w.Path(), "metadata.json"))
	if err != nil {
		return nil, fmt.Errorf("provider %q (%s): reading written state: %w", name, dir, err)
	}
	return st, nil
}

func checkDir(p ProviderDir) (string, error) {
	if p.Dir == "" {
		return "", fmt.Errorf("provider %q: no directory", p.Name)
	}
	dir, err := filepath.Abs(p.Dir)
	if err != nil {
		return "", fmt.Errorf("provider %q (%s): %w", p.label(), p.Dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("provider %q (%s): %w", p.label(), p.Dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("provider %q (%s): not a directory", p.label(), p.Dir)
	}
	return dir, nil
}

func (p ProviderDir) label() string {
	if p.Name != "" {
		return p.Name
	}
	return filepath.Base(p.Dir)
}

// setBuildTimestamp overwrites the build time grype's writer recorded (it
// always uses the wall clock), rounded to the second as grype does.
func setBuildTimestamp(dbFile string, t time.Time) error {
	db, err := gorm.Open(sqlite.Open(dbFile), &gorm.Config{Logger: gormlogger.Discard})
	if err != nil {
		return fmt.Errorf("opening db %q: %w", dbFile, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("opening db %q: %w", dbFile, err)
	}
	defer sqlDB.Close()
	ts := t.UTC().Round(time.Second)
	if err := db.Exec("UPDATE db_metadata SET build_timestamp = ?", ts).Error; err != nil {
		return fmt.Errorf("setting build timestamp in %q: %w", dbFile, err)
	}
	return nil
}
