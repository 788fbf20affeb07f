package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/bmatcuk/doublestar/v4"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	stfile "github.com/anchore/stereoscope/pkg/file"
	stimage "github.com/anchore/stereoscope/pkg/image"
	"github.com/anchore/syft/syft/file"
	"github.com/anchore/syft/syft/format/syftjson"
	"github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"
	"github.com/anchore/syft/syft/source/stereoscopesource"

	"github.com/buildgate/buildgate"
)

// A chain entry of the layer cache (its name ends in chainSuffix) keeps,
// for a chain of layer diff IDs (an image's layers, bottom up), what syft
// found in an image made of exactly those layers: the syft-json document,
// the packages, the distro, and every file query syft's catalogers made
// of the squashed tree (selectors). An image whose lower layers are such a
// chain, and whose layers above it add nothing any of those queries could
// return (see chainHolds), gets the same packages, relationships and files
// from syft as the chain alone: Catalog takes them from the entry instead
// of running syft over the whole tree again.

// selectors are the file queries syft's catalogers made of an image's
// squashed tree, as recordingResolver records them.
type selectors struct {
	mu    sync.Mutex
	paths map[string]bool // FilesByPath, HasPath, RelativeFileByPath
	globs map[string]bool // FilesByGlob
	mimes map[string]bool // FilesByMIMEType
	all   bool            // AllLocations
	nix   bool            // AllLocations, by nixStoreLister
}

func newSelectors() *selectors {
	return &selectors{paths: map[string]bool{}, globs: map[string]bool{}, mimes: map[string]bool{}}
}

func (s *selectors) add(set map[string]bool, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		set[v] = true
	}
}

// recordingSource is a syft source whose file resolvers record the
// queries made of them.
type recordingSource struct {
	source.Source
	sel *selectors
}

func (s recordingSource) FileResolver(scope source.Scope) (file.Resolver, error) {
	r, err := s.Source.FileResolver(scope)
	if err != nil {
		return nil, err
	}
	return recordingResolver{Resolver: r, sel: s.sel}, nil
}

// ExcludedPaths passes on the source's exclusions, which syft reads.
func (s recordingSource) ExcludedPaths() []string { return excludedPaths(s.Source) }

// recordingResolver records every query that selects files; the ones
// that read a location (contents, metadata) read what a query returned.
type recordingResolver struct {
	file.Resolver
	sel *selectors
}

func (r recordingResolver) HasPath(p string) bool {
	r.sel.add(r.sel.paths, p)
	return r.Resolver.HasPath(p)
}

func (r recordingResolver) FilesByPath(paths ...string) ([]file.Location, error) {
	r.sel.add(r.sel.paths, paths...)
	return r.Resolver.FilesByPath(paths...)
}

func (r recordingResolver) FilesByGlob(patterns ...string) ([]file.Location, error) {
	r.sel.add(r.sel.globs, patterns...)
	return r.Resolver.FilesByGlob(patterns...)
}

func (r recordingResolver) FilesByMIMEType(types ...string) ([]file.Location, error) {
	r.sel.add(r.sel.mimes, types...)
	return r.Resolver.FilesByMIMEType(types...)
}

func (r recordingResolver) RelativeFileByPath(l file.Location, p string) *file.Location {
	r.sel.add(r.sel.paths, p)
	return r.Resolver.RelativeFileByPath(l, p)
}

// nixStoreLister is the function of syft's nix store cataloger that
// lists every location of the tree, keeping only the paths under a nix
// store ("nix/store/" in them; syft v1.57's findPackagesFromStore and
// findParentNixStorePath): what it reads is selected by that substring.
const nixStoreLister = "github.com/anchore/syft/syft/pkg/cataloger/nix.storeCataloger.findPackagesFromStore"

// nixStore is the substring that selects a path for nixStoreLister.
const nixStore = "nix/store/"

func (r recordingResolver) AllLocations(ctx context.Context) <-chan file.Location {
	pc := make([]uintptr, 1)
	frame, _ := runtime.CallersFrames(pc[:runtime.Callers(2, pc)]).Next()
	r.sel.mu.Lock()
	if frame.Function == nixStoreLister {
		r.sel.nix = true
	} else {
		r.sel.all = true
	}
	r.sel.mu.Unlock()
	return r.Resolver.AllLocations(ctx)
}

// chainEntry is a chain entry as the cache stores it.
type chainEntry struct {
	Doc           []byte // syft-json
	Packages      []buildgate.Package
	Distro        string
	DistroVersion string
	LikeDistro    []string
	Paths         []string
	Globs         []string
	MIMEs         []string
	All           bool
	Nix           bool
}

func newChainEntry(doc []byte, pkgs []buildgate.Package, md buildgate.Metadata, sel *selectors) *chainEntry {
	sel.mu.Lock()
	defer sel.mu.Unlock()
	return &chainEntry{
		Doc: doc, Packages: pkgs,
		Distro: md.Distro, DistroVersion: md.DistroVersion, LikeDistro: md.LikeDistro,
		Paths: sortedKeys(sel.paths), Globs: sortedKeys(sel.globs), MIMEs: sortedKeys(sel.mimes), All: sel.all, Nix: sel.nix,
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sbomKey names what syft's result depends on besides the layers: syft's
// version and its configuration.
func sbomKey(cfg Config) (string, error) {
	raw, err := json.Marshal(cfg.SBOM)
	if err != nil {
		return "", fmt.Errorf("encoding the SBOM configuration: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "sbomchain v1\nsyft %s\n%s\n", syftVersion(), raw)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// processNonce stands for syft's version in a binary that does not record
// it (a test binary): its chain entries are good for this process only.
var processNonce = sync.OnceValue(func() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "unknown " + hex.EncodeToString(b)
})

// syftVersion is the version of syft linked in.
func syftVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/anchore/syft" {
				if d.Replace != nil {
					return d.Replace.Path + "@" + d.Replace.Version + " " + d.Replace.Sum
				}
				return d.Version + " " + d.Sum
			}
		}
	}
	return processNonce()
}

// chainKey is the cache key of the chain ids under sbom (see sbomKey).
func chainKey(ids []v1.Hash, sbom string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", sbom)
	for _, id := range ids {
		fmt.Fprintf(h, "%s\n", id)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// getChain returns the chain entry under key, or nil.
func (c *LayerCache) getChain(key string) *chainEntry {
	name := key + chainSuffix
	if !c.touch(name) {
		return nil
	}
	raw, err := os.ReadFile(c.path(name))
	var e chainEntry
	if err == nil {
		err = decodeChecked(raw, &e)
	}
	if err != nil {
		c.drop(name) // unreadable or corrupt: catalog again
		return nil
	}
	return &e
}

// putChain stores e under key; a full disk is handled as put does.
func (c *LayerCache) putChain(key string, e *chainEntry) error {
	raw, err := encodeChecked(e)
	if err != nil {
		return err
	}
	return c.putFile(key+chainSuffix, raw)
}

// encodeChecked gobs v after the SHA-256 of the gob, so that a file cut
// short or changed does not decode.
func encodeChecked(v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.Write(make([]byte, sha256.Size))
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, fmt.Errorf("encoding a layer cache file: %w", err)
	}
	raw := buf.Bytes()
	sum := sha256.Sum256(raw[sha256.Size:])
	copy(raw, sum[:])
	return raw, nil
}

func decodeChecked(raw []byte, v any) error {
	if len(raw) < sha256.Size {
		return errors.New("layer cache file cut short")
	}
	if sum := sha256.Sum256(raw[sha256.Size:]); !bytes.Equal(sum[:], raw[:sha256.Size]) {
		return errors.New("layer cache file does not match its checksum")
	}
	if err := gob.NewDecoder(bytes.NewReader(raw[sha256.Size:])).Decode(v); err != nil {
		return fmt.Errorf("decoding a layer cache file: %w", err)
	}
	return nil
}

// chainRun is what Catalog knows of an image when it looks for a chain
// entry of its lower layers.
type chainRun struct {
	cfg    Config
	img    v1.Image
	layers []v1.Layer
	ids    []v1.Hash
	taps   *layerTaps
	keys   []string // the layers' files pass keys
	// written marks the layers fromChain unpacked: the catalog keeps
	// their tars
	written    []bool
	budget     *budget
	lim        Limits
	contentDir string
	name       string
	digest     string
	md         buildgate.Metadata
	sbomKey    string
	newScanner func() *scanner
}

// fromChain returns the result of an image whose lower layers are a
// cached chain and whose upper layers add nothing syft's catalogers
// looked for there, or nil when there is none such: Catalog then runs
// syft. Only the upper layers are read.
func fromChain(ctx context.Context, r chainRun) (*Result, error) {
	c := r.cfg.LayerCache
	var (
		n     int
		entry *chainEntry
	)
	for n = len(r.ids); n > 0; n-- {
		if r.taps.cached[n-1] == nil {
			continue // the files pass needs every lower layer's scan
		}
		if entry = c.getChain(chainKey(r.ids[:n], r.sbomKey)); entry != nil {
			break
		}
	}
	if entry == nil || entry.All {
		return nil, nil
	}
	for i := range n {
		// a lower layer is counted against the limits by its tar
		if r.taps.cached[i] == nil || !r.taps.unpacked[i] {
			return nil, nil
		}
	}

	scans, mimes, err := r.scanUpper(ctx, n, entry)
	if err != nil {
		return nil, err
	}
	if why := chainBreak(entry, scans[:n], scans[n:], mimes); why != "" {
		slog.Debug("cataloging the whole image", "digest", r.digest, "reason", why)
		c.mu.Lock()
		c.chainMiss = why
		c.mu.Unlock()
		return nil, r.keepUpper(n, scans)
	}

	for i := n; i < len(r.ids); i++ {
		if r.taps.cached[i] == nil {
			if err := r.budget.replay(scans[i], 0); err != nil {
				return nil, err
			}
		}
	}
	doc, err := r.retarget(entry.Doc, scans)
	if err != nil {
		return nil, err
	}
	if err := r.storeUpper(n, scans); err != nil {
		return nil, err
	}
	// no entry is kept for this image's chain: an image on top of it
	// finds the lower one, and a build's entry would push out the tars
	// of the layers every build shares
	c.mu.Lock()
	c.chainHits++
	c.mu.Unlock()
	files := squash(scans)
	md := r.md
	md.Distro, md.DistroVersion, md.LikeDistro = entry.Distro, entry.DistroVersion, entry.LikeDistro
	return &Result{
		Digest:         r.digest,
		SBOM:           doc,
		Packages:       entry.Packages,
		Files:          files.files,
		Secrets:        files.secrets,
		ContentMatches: files.contentMatches,
		Metadata:       md,
	}, nil
}

// scanUpper reads the upper layers, from n on: unpacked where
// stereoscope would keep them (the bytes count against the image's
// limits as stereoscope's read would), then scanned against a budget of
// their own, whose entries count against the image's when the entry is
// used (else the full run scans them again), and sniffed for the MIME
// types entry asked for. It returns every layer's scan.
func (r chainRun) scanUpper(ctx context.Context, n int, entry *chainEntry) ([]*layerScan, map[string]string, error) {
	upper := newBudget(r.lim)
	scans := append([]*layerScan(nil), r.taps.cached...)
	mimes := map[string]string{}
	for i := n; i < len(r.ids); i++ {
		if !r.taps.unpacked[i] {
			if err := r.unpack(i); err != nil {
				return nil, nil, err
			}
		}
		if scans[i] == nil {
			sc := r.newScanner()
			sc.budget = upper
			err := r.readUpper(i, func(tr io.Reader) error {
				var err error
				scans[i], err = sc.scanLayer(ctx, tr)
				return err
			})
			if err != nil {
				return nil, nil, fmt.Errorf("reading layer %d: %w", i, err)
			}
		}
		if len(entry.MIMEs) > 0 {
			if err := r.readUpper(i, func(tr io.Reader) error { return sniffMIMEs(tr, mimes) }); err != nil {
				return nil, nil, fmt.Errorf("reading layer %d: %w", i, err)
			}
		}
	}
	return scans, mimes, nil
}

// keepUpper hands the upper layers' scans, from n on, to the full run
// when the chain cannot answer: it takes them from here, as from the
// cache, and counts their entries as it counts a cached layer.
func (r chainRun) keepUpper(n int, scans []*layerScan) error {
	for i := n; i < len(r.ids); i++ {
		if r.taps.cached[i] != nil {
			continue
		}
		if err := r.cfg.LayerCache.put(r.keys[i], scans[i]); err != nil {
			return err
		}
		if err := r.budget.replay(scans[i], 0); err != nil {
			return err
		}
		r.taps.cached[i] = scans[i]
	}
	return nil
}

// storeUpper caches the upper layers' scans, from n on, and the tars
// written for them, when the chain answered.
func (r chainRun) storeUpper(n int, scans []*layerScan) error {
	c := r.cfg.LayerCache
	for i := n; i < len(r.ids); i++ {
		if r.taps.cached[i] == nil {
			if err := c.put(r.keys[i], scans[i]); err != nil {
				return err
			}
		}
		if r.written[i] {
			if err := c.putTar(r.ids[i], unpackedPath(r.contentDir, i, r.ids[i])); err != nil {
				return err
			}
		}
	}
	return nil
}

// unpack writes layer i's tar where stereoscope keeps it, counting its
// bytes against the image's limits, and marks it unpacked, for the
// catalog, with or without the chain, to read from there.
func (r chainRun) unpack(i int) error {
	rc, err := uncompressed(r.layers[i], r.ids[i])
	if err != nil {
		return fmt.Errorf("reading layer %d: %w", i, err)
	}
	defer rc.Close()
	tar := unpackedPath(r.contentDir, i, r.ids[i])
	f, err := os.Create(tar)
	if err != nil {
		return fmt.Errorf("unpacking layer %d: %w", i, err)
	}
	_, err = io.Copy(f, &countingReader{r: rc, budget: r.budget})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tar)
		if lerr := r.budget.failed(); lerr != nil {
			return lerr
		}
		return fmt.Errorf("unpacking layer %d: %w", i, err)
	}
	r.taps.unpacked[i], r.taps.tars[i], r.written[i] = true, tar, true
	if c := r.taps.cached[i]; c != nil {
		// as Catalog counts a cached layer that is unpacked already
		return r.budget.replay(c, 0)
	}
	return nil
}

// readUpper gives read layer i's unpacked tar.
func (r chainRun) readUpper(i int, read func(io.Reader) error) error {
	f, err := os.Open(unpackedPath(r.contentDir, i, r.ids[i]))
	if err != nil {
		return err
	}
	defer f.Close()
	return read(f)
}

// countingReader counts what it reads against a budget.
type countingReader struct {
	r      io.Reader
	budget *budget
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if berr := c.budget.read(n); berr != nil {
		return n, berr
	}
	return n, err
}

// sniffMIMEs sets the MIME type stereoscope gives each regular file of
// the tar r.
func sniffMIMEs(r io.Reader, out map[string]string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA { //nolint:staticcheck // as scanLayer
			out[absPath(hdr.Name)] = stfile.MIMEType(tr)
		}
	}
}

// layerSize is the size stereoscope gives a layer: what its entries hold.
func layerSize(s *layerScan) int64 {
	var n int64
	for _, e := range s.entries {
		n += e.file.Size
	}
	return n
}

// chainBreak says why the upper layers, on top of the lower ones whose
// chain entry is e, may change the answer of a query e recorded, or ""
// when they leave every one with the answer it had: they remove nothing (no whiteout), replace no file, add only
// regular files and directories, none of which a path query named (after
// the lower layers' symbolic links), a glob matches (by any path that
// resolves to it), a new one a symbolic link of the lower layers points
// at, has a MIME type asked for, or is in a nix store when syft listed the
// tree for one, and none under a symbolic link. Otherwise Catalog runs
// syft over the whole image.
func chainBreak(e *chainEntry, lower, upper []*layerScan, mimes map[string]string) string {
	q, why := newChainQuery(e, lower, mimes)
	if why != "" {
		return why
	}
	for _, s := range upper {
		for _, en := range s.entries {
			if why := q.breaks(en.file, en.whiteout || en.opaque); why != "" {
				return why
			}
			q.tree[en.file.Path] = en.file
		}
	}
	return ""
}

// chainQuery is what chainBreak checks the upper layers' files against:
// the tree of the layers below, with what syft looked for there.
type chainQuery struct {
	e       *chainEntry
	tree    map[string]buildgate.File
	queried map[string]bool // the paths syft looked up, links resolved
	links   []chainLink     // the lower layers' links, targets resolved
	wanted  map[string]bool // the MIME types syft asked for
	mimes   map[string]string
}

type chainLink struct{ from, to string }

func newChainQuery(e *chainEntry, lower []*layerScan, mimes map[string]string) (*chainQuery, string) {
	q := &chainQuery{e: e, tree: map[string]buildgate.File{}, queried: map[string]bool{}, wanted: map[string]bool{}, mimes: mimes}
	for _, f := range squash(lower).files {
		q.tree[f.Path] = f
	}
	for _, p := range e.Paths {
		if !path.IsAbs(p) {
			return nil, "syft looked up a relative path" // not worth resolving
		}
		rp, ok := resolveLinks(q.tree, path.Clean(p))
		if !ok {
			return nil, "too many links in " + p
		}
		q.queried[rp] = true
	}
	for _, f := range q.tree {
		if f.Type != TypeSymlink {
			continue
		}
		t := f.LinkDest
		if !path.IsAbs(t) {
			t = path.Join(path.Dir(f.Path), t)
		}
		rt, ok := resolveLinks(q.tree, path.Clean(t))
		if !ok {
			return nil, "too many links in " + t
		}
		q.links = append(q.links, chainLink{f.Path, rt})
	}
	for _, m := range e.MIMEs {
		q.wanted[m] = true
	}
	return q, ""
}

// aliases are the paths that resolve to p through the lower layers' links.
func (q *chainQuery) aliases(p string) []string {
	out := []string{p}
	for i := 0; i < len(out) && len(out) <= maxAliases; i++ {
		for _, l := range q.links {
			if l.to == "/" {
				out = append(out, path.Join(l.from, out[i]))
			} else if rest, ok := strings.CutPrefix(out[i], l.to+"/"); ok {
				out = append(out, path.Join(l.from, rest))
			}
		}
	}
	return out
}

// breaks says why the upper layers' file f (a whiteout or opaque
// directory when removes) may change an answer, or "".
func (q *chainQuery) breaks(f buildgate.File, removes bool) string {
	p := f.Path
	if removes || (f.Type != TypeFile && f.Type != TypeDir) {
		return "not a file or directory: " + p
	}
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		if a, ok := q.tree[d]; ok && a.Type != TypeDir {
			return "under a link or file below: " + p
		}
	}
	old, exists := q.tree[p]
	if exists && (old.Type != TypeDir || f.Type != TypeDir) {
		return "replaces a file below: " + p
	}
	if q.queried[p] || q.wanted[q.mimes[p]] && f.Type == TypeFile {
		return "syft looked for " + p
	}
	names := q.aliases(p)
	if len(names) > maxAliases {
		return "too many links to " + p
	}
	for _, a := range names {
		if why := q.e.matches(a); why != "" {
			return why
		}
	}
	if !exists {
		for _, l := range q.links {
			if l.to == p || strings.HasPrefix(l.to, p+"/") {
				return "a link below points at " + p
			}
		}
	}
	return ""
}

// matches says which of e's globs (or its nix store) path a is in, or "".
func (e *chainEntry) matches(a string) string {
	if e.Nix && strings.Contains(a, nixStore) {
		return "syft looked for " + a
	}
	for _, g := range e.Globs {
		// as written and, in case a search ignores case, lower-cased
		ok, err := doublestar.Match(g, a)
		if !ok && err == nil {
			ok, err = doublestar.Match(strings.ToLower(g), strings.ToLower(a))
		}
		if ok || err != nil {
			return "syft looked for " + g + ": " + a
		}
	}
	return ""
}

// maxAliases bounds the paths chainBreak checks for one new path; a path
// that more links lead to is taken as looked for.
const maxAliases = 64

// resolveLinks returns p with every symbolic link among its directories
// and itself followed in tree, as an image's file system resolves it; ok
// is false when that takes more than 40 links.
func resolveLinks(tree map[string]buildgate.File, p string) (string, bool) {
	for hops := 0; hops <= 40; hops++ {
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		cur := "/"
		followed := false
		for i, part := range parts {
			next := path.Join(cur, part)
			f, ok := tree[next]
			if ok && f.Type == TypeSymlink {
				t := f.LinkDest
				if !path.IsAbs(t) {
					t = path.Join(cur, t)
				}
				p = path.Join(append([]string{path.Clean(t)}, parts[i+1:]...)...)
				followed = true
				break
			}
			cur = next
		}
		if !followed {
			return p, true
		}
	}
	return "", false
}

// retarget returns the chain's syft-json document doc as describing this
// image: its source is this image's, as syft describes it, and the
// relationships from the source name this source.
func (r chainRun) retarget(doc []byte, scans []*layerScan) ([]byte, error) {
	var d struct {
		Artifacts             json.RawMessage `json:"artifacts"`
		ArtifactRelationships json.RawMessage `json:"artifactRelationships"`
		Files                 json.RawMessage `json:"files,omitempty"`
		Source                json.RawMessage `json:"source"`
		Distro                json.RawMessage `json:"distro"`
		Descriptor            json.RawMessage `json:"descriptor"`
		Schema                json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("reading a cached SBOM: %w", err)
	}
	var old struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(d.Source, &old); err != nil || old.ID == "" {
		return nil, fmt.Errorf("reading a cached SBOM's source: %v", err)
	}

	desc, err := r.describe(scans)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := syftjson.NewFormatEncoder().Encode(&buf, sbom.SBOM{Source: desc}); err != nil {
		return nil, fmt.Errorf("encoding syft-json: %w", err)
	}
	var src struct {
		Source json.RawMessage `json:"source"`
	}
	if err := json.Unmarshal(buf.Bytes(), &src); err != nil {
		return nil, fmt.Errorf("encoding syft-json: %w", err)
	}
	d.Source = src.Source
	// the relationships of the source are this source's, in syft's order
	var rels []struct {
		Parent   string          `json:"parent"`
		Child    string          `json:"child"`
		Type     string          `json:"type"`
		Metadata json.RawMessage `json:"metadata,omitempty"`
	}
	if err := json.Unmarshal(d.ArtifactRelationships, &rels); err != nil {
		return nil, fmt.Errorf("reading a cached SBOM's relationships: %w", err)
	}
	for i := range rels {
		if rels[i].Parent == old.ID {
			rels[i].Parent = desc.ID
		}
		if rels[i].Child == old.ID {
			rels[i].Child = desc.ID
		}
	}
	sort.SliceStable(rels, func(i, j int) bool {
		a, b := rels[i], rels[j]
		if a.Parent != b.Parent {
			return a.Parent < b.Parent
		}
		if a.Child != b.Child {
			return a.Child < b.Child
		}
		return a.Type < b.Type
	})
	if d.ArtifactRelationships, err = marshalJSON(rels); err != nil {
		return nil, err
	}

	return marshalJSON(&d)
}

// marshalJSON encodes v as syft's encoder does.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding syft-json: %w", err)
	}
	return buf.Bytes(), nil
}

// describe returns the source description syft gives the image (see
// openSource) without reading its layers again: stereoscope's metadata
// comes from the manifest and config, and a layer's size is what its
// entries hold.
func (r chainRun) describe(scans []*layerScan) (source.Description, error) {
	id, err := r.img.ConfigName()
	if err != nil {
		return source.Description{}, fmt.Errorf("reading image config: %w", err)
	}
	cf, err := r.img.ConfigFile()
	if err != nil {
		return source.Description{}, fmt.Errorf("reading image config: %w", err)
	}
	mt, err := r.img.MediaType()
	if err != nil {
		return source.Description{}, fmt.Errorf("reading manifest: %w", err)
	}
	rawConfig, err := r.img.RawConfigFile()
	if err != nil {
		return source.Description{}, fmt.Errorf("reading image config: %w", err)
	}
	simg := &stimage.Image{Metadata: stimage.Metadata{
		ID: id.String(), Config: *cf, MediaType: mt, RawConfig: rawConfig,
		OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant,
		ManifestDigest: r.digest,
	}}
	if raw, err := r.img.RawManifest(); err == nil {
		simg.Metadata.RawManifest = raw
	}
	for i, l := range r.layers {
		lmt, err := l.MediaType()
		if err != nil {
			return source.Description{}, fmt.Errorf("reading layer %d: %w", i, err)
		}
		size := layerSize(scans[i])
		simg.Layers = append(simg.Layers, &stimage.Layer{Metadata: stimage.LayerMetadata{
			Index: uint(i), Digest: r.ids[i].String(), MediaType: lmt, Size: size,
		}})
		simg.Metadata.Size += size
	}
	return stereoscopesource.New(simg, stereoscopesource.ImageConfig{
		Reference: r.name,
		Alias:     source.Alias{Name: r.name, Version: r.digest},
	}).Describe(), nil
}

// putFile writes the cache file name, trimming the cache to half its size
// and trying once more when the disk is full.
func (c *LayerCache) putFile(name string, raw []byte) error {
	size := int64(len(raw))
	if size > c.max {
		return nil // would push out everything else
	}
	err := c.write(name, raw)
	if errors.Is(err, syscall.ENOSPC) {
		c.mu.Lock()
		c.trim(c.size / 2)
		c.mu.Unlock()
		err = c.write(name, raw)
	}
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("layer cache %s: the disk is full: free space there or lower gate serve --layer-cache-size: %w", c.dir, err)
		}
		return fmt.Errorf("layer cache %s: %w", c.dir, err)
	}
	c.add(name, size)
	return nil
}
