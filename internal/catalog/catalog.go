// Package catalog says what is inside a container image: its SBOM (made
// with syft), packages, files, secrets, content-rule matches and metadata.
// It is buildgate's syft adapter and translates into the domain types of
// package buildgate.
//
// Catalog reads an OCI image layout directory holding one image. syft
// (through stereoscope) unpacks each layer once, for package cataloging;
// files, secrets and content rules are read from the same decompressed
// streams as they go by, and the layers are then squashed as
// go-containerregistry's mutate.Extract squashes them.
//
// syft needs a database/sql driver named "sqlite"; the program registers
// it (see Catalog).
//
// No matched text is ever returned, logged or put in an error: a secret is
// reported as its rule, path and line only.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/cataloging"
	"github.com/anchore/syft/syft/sbom"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildgate/buildgate"
)

// sqliteDriver is the database/sql driver syft's RPM cataloger opens.
const sqliteDriver = "sqlite"

// errNoSQLiteDriver says that the program registered no SQLite driver for
// syft. The package does not register one itself: the program links
// exactly one driver named "sqlite", github.com/glebarez/go-sqlite, which
// grype's DB code already imports (modernc.org/sqlite's own driver would
// register the same name a second time and panic).
var errNoSQLiteDriver = errors.New(`cataloging packages: no database/sql driver named "sqlite" is registered ` +
	`(syft reads RPM databases with it): import github.com/glebarez/go-sqlite`)

// DefaultMaxSecretFileSize is the largest file searched for secrets and
// content rules by default.
const DefaultMaxSecretFileSize = 10 << 20

// Config says how an image is cataloged.
type Config struct {
	// SBOM configures syft. Nil means DefaultSBOMConfig().
	SBOM *syft.CreateSBOMConfig
	// Name is the SBOM's source name, usually the image reference the
	// image was submitted as; empty means the manifest digest. The
	// source version is always the manifest digest.
	Name string
	// MaxSecretFileSize is the largest regular file, in bytes, searched
	// for secrets and content rules; larger files are only hashed. Zero
	// means DefaultMaxSecretFileSize.
	MaxSecretFileSize int64
	// SecretRules are matched against each line of every small text file
	// (no NUL byte in its first 8 KiB).
	SecretRules []Rule
	// ContentRules are named content regexes (the files gate's
	// content_regex_match); each that matches a line of a file reports
	// the file's path.
	ContentRules []Rule
	// Limits bound what the image may unpack to; zero fields take
	// DefaultLimits' values.
	Limits Limits
	// Unpacked, when set, is called once every layer the catalog reads
	// has been read and unpacked.
	Unpacked func()
	// LayerCache, when set, keeps each layer's files pass (files,
	// secrets, content matches) by diff ID: a layer found there is only
	// read by syft and counted against the limits.
	LayerCache *LayerCache
}

// DefaultConfig returns the configuration that catalogs like the grype CLI
// does, with Anchore's default secret rules and no content rules.
func DefaultConfig() Config {
	return Config{
		SBOM:              DefaultSBOMConfig(),
		MaxSecretFileSize: DefaultMaxSecretFileSize,
		SecretRules:       DefaultSecretRules(),
	}
}

// DefaultSBOMConfig returns syft's configuration as the grype CLI sets it
// (grype's getProviderConfig), so that packages equal grype's: syft's
// defaults, Go binary symbols captured for the gosymbols qualifier, and
// packages without a version dropped.
func DefaultSBOMConfig() *syft.CreateSBOMConfig {
	cfg := syft.DefaultCreateSBOMConfig()
	search := cataloging.DefaultArchiveSearchConfig()
	cfg.Packages.JavaArchive.IncludeIndexedArchives = search.IncludeIndexedArchives
	cfg.Packages.JavaArchive.IncludeUnindexedArchives = search.IncludeUnindexedArchives
	cfg.Packages.Golang = cfg.Packages.Golang.WithCaptureSymbols(cataloging.SymbolScopeAll)
	cfg.Compliance.MissingVersion = cataloging.ComplianceActionDrop
	return cfg
}

// Result is what Catalog finds in an image.
type Result struct {
	// Digest is the image's manifest digest.
	Digest string `json:"digest"`
	// SBOM is the syft-json document.
	SBOM []byte `json:"-"`
	// Syft is the SBOM as syft made it, from which SBOM was encoded.
	Syft     *sbom.SBOM          `json:"-"`
	Packages []buildgate.Package `json:"packages"`
	Files    []buildgate.File    `json:"files"`
	Secrets  []buildgate.Secret  `json:"secrets,omitempty"`
	// ContentMatches maps each content rule that matched to the sorted
	// paths of the files it matched.
	ContentMatches map[string][]string `json:"content_matches,omitempty"`
	Metadata       buildgate.Metadata  `json:"metadata"`

	// done is closed when SBOM is set or err says why it is not (nil:
	// both were set when Result was made).
	done chan struct{}
	err  error
}

// Wait waits for Start's last steps: the SBOM's document encoded into
// SBOM, and the layer cache written. It returns their error, the
// cataloging's.
func (r *Result) Wait() error {
	if r.done == nil {
		return nil
	}
	<-r.done
	return r.err
}

// Catalog analyses the one image in the OCI image layout at layoutDir.
//
// The program must have registered a database/sql driver named "sqlite"
// (github.com/glebarez/go-sqlite, as grype's DB code does) for syft's RPM
// cataloger; Catalog returns an error when there is none.
func Catalog(ctx context.Context, layoutDir string, cfg Config) (*Result, error) {
	r, err := Start(ctx, layoutDir, cfg)
	if err != nil {
		return nil, err
	}
	if err := r.Wait(); err != nil {
		return nil, err
	}
	return r, nil
}

// Start is Catalog, returning once syft's SBOM and the files pass are
// done: the SBOM's document is encoded, and what the layer cache keeps
// written, on a goroutine of its own, so that the caller can match
// Result.Syft meanwhile. Result.SBOM is set once Wait returns nil; Wait
// must be called.
func Start(ctx context.Context, layoutDir string, cfg Config) (*Result, error) {
	img, err := openLayout(layoutDir)
	if err != nil {
		return nil, err
	}
	return StartImage(ctx, img, cfg)
}

// StartImage is Start on an image read where it is, as a registry serves
// it: each layer is read once, as it downloads, and one whose tar the
// layer cache holds is not read at all.
func StartImage(ctx context.Context, img v1.Image, cfg Config) (*Result, error) {
	if cfg.SBOM == nil {
		cfg.SBOM = DefaultSBOMConfig()
	}
	if cfg.MaxSecretFileSize <= 0 {
		cfg.MaxSecretFileSize = DefaultMaxSecretFileSize
	}
	if !slices.Contains(sql.Drivers(), sqliteDriver) {
		return nil, errNoSQLiteDriver
	}
	secretRules, err := compileRules("secret", cfg.SecretRules)
	if err != nil {
		return nil, err
	}
	contentRules, err := compileRules("content", cfg.ContentRules)
	if err != nil {
		return nil, err
	}

	lim := cfg.Limits.orDefaults()
	if err := lim.checkDocuments(img); err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("computing image digest: %w", err)
	}
	md, err := imageMetadata(img)
	if err != nil {
		return nil, fmt.Errorf("reading image metadata: %w", err)
	}
	name := cfg.Name
	if name == "" {
		name = digest.String()
	}

	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading layers: %w", err)
	}
	ids, err := diffIDs(img, len(layers))
	if err != nil {
		return nil, err
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// handedOff says that Start's last steps, on a goroutine of their own,
	// clean up
	var handedOff bool

	// stereoscope decompresses each layer once, for syft; the files pass
	// scans the same stream as it goes by (see layerTaps)
	// and counts what they unpack to against the limits
	b := newBudget(lim)
	taps := newLayerTaps(ctx, ids, func(ctx context.Context, r io.Reader) (*layerScan, error) {
		sc := newScanner(cfg, secretRules, contentRules)
		sc.budget = b
		return sc.scanLayer(ctx, r)
	})
	taps.budget = b
	var (
		keys       []string
		contentDir string
	)
	if c := cfg.LayerCache; c != nil {
		if contentDir, err = c.workDir(); err != nil {
			return nil, err
		}
		defer func() {
			if !handedOff {
				os.RemoveAll(contentDir) // the source removes it; this is for the errors before
			}
		}()
		sk := scanKey(cfg)
		keys = make([]string, len(ids))
		for i, id := range ids {
			keys[i] = c.key(id, sk)
			taps.cached[i] = c.get(keys[i])
			// a layer whose tar is kept is not read: count it here
			tar := unpackedPath(contentDir, i, id)
			size, ok := c.getTar(id, tar)
			if !ok {
				continue
			}
			taps.unpacked[i] = true
			if taps.cached[i] == nil {
				// its scan was dropped: finish scans the tar,
				// counting its entries
				taps.tars[i] = tar
				err = b.read(int(size))
			} else {
				err = b.replay(taps.cached[i], size)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	// a chain of lower layers cataloged before, under layers that add
	// nothing its catalogers looked for, is not cataloged again
	var (
		sel      *selectors
		sbomHash string
		written  []bool
	)
	if cfg.LayerCache != nil {
		if sbomHash, err = sbomKey(cfg); err != nil {
			return nil, err
		}
		written = make([]bool, len(ids))
		res, err := fromChain(ctx, chainRun{
			cfg: cfg, img: img, layers: layers, ids: ids, taps: taps, keys: keys, written: written, budget: b, lim: lim,
			contentDir: contentDir, name: name, digest: digest.String(), md: md, sbomKey: sbomHash,
			newScanner: func() *scanner { return newScanner(cfg, secretRules, contentRules) },
		})
		if err != nil || res != nil {
			if res != nil && cfg.Unpacked != nil {
				cfg.Unpacked()
			}
			return res, err
		}
		sel = newSelectors()
	}
	src, err := openSource(ctx, img, name, digest.String(), taps, contentDir)
	if err == nil && cfg.Unpacked != nil {
		cfg.Unpacked()
	}
	if err != nil {
		cancel()
		taps.wg.Wait()
		if lerr := b.failed(); lerr != nil {
			return nil, lerr
		}
		if cerr := parent.Err(); cerr != nil {
			return nil, fmt.Errorf("unpacking layers: %w", cerr)
		}
		return nil, err
	}
	defer func() {
		if !handedOff {
			src.Close()
		}
	}()
	if sel != nil {
		src = recordingSource{Source: src, sel: sel}
	}

	var (
		wg       sync.WaitGroup
		files    *fileScan
		scans    []*layerScan
		filesErr error
	)
	wg.Go(func() {
		var err error
		scans, err = taps.finish(ctx, layers)
		if err != nil {
			filesErr = err
			cancel()
			return
		}
		files = squash(scans)
	})
	s, sbomErr := createSBOM(ctx, src, cfg.SBOM)
	if sbomErr != nil {
		cancel()
	}
	wg.Wait()
	// when one part fails the other is cancelled: report the cause
	if filesErr != nil && (sbomErr == nil || !errors.Is(filesErr, context.Canceled)) {
		return nil, fmt.Errorf("listing files: %w", filesErr)
	}
	if sbomErr != nil {
		return nil, sbomErr
	}

	setDistro(&md, s.Artifacts.LinuxDistribution)
	res := &Result{
		Digest:         digest.String(),
		Syft:           s,
		Packages:       packagesOf(s),
		Files:          files.files,
		Secrets:        files.secrets,
		ContentMatches: files.contentMatches,
		Metadata:       md,
		done:           make(chan struct{}),
	}
	// the goroutine owns the tars in contentDir and the source from here
	handedOff = true
	go func() {
		defer close(res.done)
		defer os.RemoveAll(contentDir)
		defer src.Close()
		res.SBOM, res.err = keep(cfg, res, keeping{ids: ids, keys: keys, taps: taps, scans: scans, written: written,
			contentDir: contentDir, sel: sel, sbomKey: sbomHash})
	}()
	return res, nil
}

// keeping is what Start's last steps keep in the layer cache.
type keeping struct {
	ids        []v1.Hash
	keys       []string
	taps       *layerTaps
	scans      []*layerScan
	written    []bool
	contentDir string
	sel        *selectors
	sbomKey    string
}

// keep encodes the SBOM's document and keeps in the layer cache what
// Start read: each layer's scan and tar, and the chain's SBOM.
func keep(cfg Config, res *Result, k keeping) ([]byte, error) {
	doc, err := encodeSyftJSON(res.Syft)
	if err != nil {
		return nil, err
	}
	// every layer hashed to its diff ID: keep what was read
	for i, key := range k.keys {
		if k.taps.cached[i] == nil {
			if err := cfg.LayerCache.put(key, k.scans[i]); err != nil {
				return nil, err
			}
		}
		if !k.taps.unpacked[i] || k.written[i] {
			if err := cfg.LayerCache.putTar(k.ids[i], unpackedPath(k.contentDir, i, k.ids[i])); err != nil {
				return nil, err
			}
		}
	}
	if k.sel != nil {
		if err := cfg.LayerCache.putChain(chainKey(k.ids, k.sbomKey), newChainEntry(doc, res.Packages, res.Metadata, k.sel)); err != nil {
			return nil, err
		}
	}
	return doc, nil
}
