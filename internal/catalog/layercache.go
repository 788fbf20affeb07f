package catalog

import (
	"container/list"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildgate/buildgate"
)

// LayerCache keeps the files pass of each layer (its files with their
// digests, secrets and content-rule matches) in files under a directory,
// keyed by the layer's diff ID and what the pass searched for, so that a
// layer the gate has read once is not hashed and searched again; and the
// layer's unpacked tar, by diff ID, so that it is not decompressed again
// either (stereoscope reads it where it would have written it). It holds
// at most its size in bytes, dropping the least recently used first, and
// survives a restart: OpenLayerCache reads what the directory holds, in
// the order of the files' modification times. Only the scan of a layer
// that hashed to its diff ID is put in; a file that does not decode is
// removed and read as a miss. It is safe for concurrent use.
type LayerCache struct {
	dir string
	max int64

	// create makes the temporary file a cache file is written to.
	create func(dir, pattern string) (tempFile, error)

	mu     sync.Mutex
	lru    *list.List // of *cacheFile, most recently used first
	byName map[string]*list.Element
	size   int64
	hits   int
	misses int
	// tarHits counts the layers not read at all.
	tarHits int
	// chainHits counts the images cataloged from a chain entry;
	// chainMiss says why the last image that found one was not.
	chainHits int
	chainMiss string
}

// tempFile is what LayerCache writes a cache file to before renaming it.
type tempFile interface {
	io.Writer
	Close() error
	Name() string
}

func createTemp(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }

// cacheFile is a file of the cache, by name.
type cacheFile struct {
	name string
	size int64
}

// The names of cache files end in scanSuffix (a files pass), tarSuffix
// (an unpacked tar) or chainSuffix (a chain's SBOM, see chainEntry);
// others are left alone, temporary files and directories (".tmp") are
// removed.
const (
	scanSuffix  = ".layer"
	tarSuffix   = ".tar"
	chainSuffix = ".sbom"
)

// OpenLayerCache opens (creating it) the cache in dir, holding at most
// maxBytes.
func OpenLayerCache(dir string, maxBytes int64) (*LayerCache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("layer cache size %d: must be positive", maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("layer cache %s: %w", dir, err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("layer cache %s: %w", dir, err)
	}
	type found struct {
		cacheFile
		mod time.Time
	}
	var files []found
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.RemoveAll(filepath.Join(dir, name)) // what a crash left
			continue
		}
		if !strings.HasSuffix(name, scanSuffix) && !strings.HasSuffix(name, tarSuffix) && !strings.HasSuffix(name, chainSuffix) ||
			!de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		files = append(files, found{cacheFile{name, fi.Size()}, fi.ModTime()})
	}
	slices.SortFunc(files, func(a, b found) int { return b.mod.Compare(a.mod) })
	c := &LayerCache{dir: dir, max: maxBytes, create: createTemp, lru: list.New(), byName: map[string]*list.Element{}}
	for _, f := range files {
		c.byName[f.name] = c.lru.PushBack(&f.cacheFile)
		c.size += f.size
	}
	c.mu.Lock()
	c.trim(c.max)
	c.mu.Unlock()
	return c, nil
}

// Size is the bytes the cache holds.
func (c *LayerCache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// Stats returns how many layers were found in the cache and how many not.
func (c *LayerCache) Stats() (hits, misses int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// scanKey names what a files pass depends on besides the layer: the
// largest file searched and the rules.
func scanKey(cfg Config) string {
	h := sha256.New()
	fmt.Fprintf(h, "layerscan v2\nmax %d\n", cfg.MaxSecretFileSize)
	for _, set := range [][]Rule{cfg.SecretRules, cfg.ContentRules} {
		fmt.Fprintf(h, "rules %d\n", len(set))
		for _, r := range set {
			fmt.Fprintf(h, "%q %q\n", r.Name, r.Regexp)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// key is the cache key of a layer's files pass.
func (c *LayerCache) key(diffID v1.Hash, scan string) string {
	h := sha256.Sum256([]byte(diffID.String() + "\n" + scan))
	return hex.EncodeToString(h[:])
}

func (c *LayerCache) path(name string) string { return filepath.Join(c.dir, name) }

// workDir makes a directory for stereoscope to unpack an image's layers
// in, on the cache's file system, so that their tars can be linked into
// the cache.
func (c *LayerCache) workDir() (string, error) {
	d, err := os.MkdirTemp(c.dir, "unpack-*.tmp")
	if err != nil {
		return "", fmt.Errorf("layer cache %s: %w", c.dir, err)
	}
	return d, nil
}

// cachedScan is layerScan as the cache stores it.
type cachedScan struct {
	Entries []cachedEntry
	Stats   layerStats
}

// cachedEntry is layerEntry as the cache stores it.
type cachedEntry struct {
	File     buildgate.File
	Whiteout bool
	Opaque   bool
	Secrets  []buildgate.Secret
	Content  []string
}

// touch marks name used; it returns whether the cache holds it.
func (c *LayerCache) touch(name string) bool {
	c.mu.Lock()
	el, ok := c.byName[name]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if ok {
		now := time.Now()
		_ = os.Chtimes(c.path(name), now, now) // keeps the order across restarts
	}
	return ok
}

// get returns the scan cached under key, or nil.
func (c *LayerCache) get(key string) *layerScan {
	name := key + scanSuffix
	if !c.touch(name) {
		c.count(false)
		return nil
	}
	raw, err := os.ReadFile(c.path(name))
	var scan *layerScan
	if err == nil {
		scan, err = decodeScan(raw)
	}
	if err != nil {
		c.drop(name) // unreadable or corrupt: read the layer again
		c.count(false)
		return nil
	}
	c.count(true)
	return scan
}

// getTar links the unpacked tar of layer diffID to dst and returns its
// size, when the cache holds it.
func (c *LayerCache) getTar(diffID v1.Hash, dst string) (int64, bool) {
	name := diffID.Hex + tarSuffix
	if !c.touch(name) {
		return 0, false
	}
	fi, err := os.Stat(c.path(name))
	if err == nil {
		err = os.Link(c.path(name), dst)
	}
	if err != nil { // trimmed meanwhile
		return 0, false
	}
	c.mu.Lock()
	c.tarHits++
	c.mu.Unlock()
	return fi.Size(), true
}

// putTar links src, the unpacked tar of layer diffID, into the cache.
func (c *LayerCache) putTar(diffID v1.Hash, src string) error {
	name := diffID.Hex + tarSuffix
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("layer cache %s: %w", c.dir, err)
	}
	if fi.Size() > c.max {
		return nil
	}
	tmp := c.path(fmt.Sprintf("%s-%s.tmp", name, rand.Text()))
	if err := os.Link(src, tmp); err != nil {
		return fmt.Errorf("layer cache %s: %w", c.dir, err)
	}
	if err := os.Rename(tmp, c.path(name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("layer cache %s: %w", c.dir, err)
	}
	c.add(name, fi.Size())
	return nil
}

func (c *LayerCache) count(hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hit {
		c.hits++
	} else {
		c.misses++
	}
}

// put stores scan under key. A full disk trims the cache to half its size
// and tries once more; when that fails too the error says so and nothing
// is left behind.
func (c *LayerCache) put(key string, scan *layerScan) error {
	raw, err := encodeScan(scan)
	if err != nil {
		return err
	}
	return c.putFile(key+scanSuffix, raw)
}

// add counts name, of size bytes, as the most recently used file and
// trims the cache to its size.
func (c *LayerCache) add(name string, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byName[name]; ok { // another worker put the same layer
		c.size -= el.Value.(*cacheFile).size
		c.lru.Remove(el)
	}
	c.byName[name] = c.lru.PushFront(&cacheFile{name, size})
	c.size += size
	c.trim(c.max)
}

// write writes raw to the file name through a temporary file, so that the
// file is whole or absent.
func (c *LayerCache) write(name string, raw []byte) error {
	f, err := c.create(c.dir, name+"-*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(raw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.path(name))
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// trim removes the least recently used files until the cache holds at
// most limit bytes. c.mu is held.
func (c *LayerCache) trim(limit int64) {
	for c.size > limit && c.lru.Len() > 0 {
		f := c.lru.Remove(c.lru.Back()).(*cacheFile)
		delete(c.byName, f.name)
		c.size -= f.size
		_ = os.Remove(c.path(f.name))
	}
}

// drop forgets name and removes its file.
func (c *LayerCache) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byName[name]; ok {
		c.size -= el.Value.(*cacheFile).size
		c.lru.Remove(el)
		delete(c.byName, name)
	}
	_ = os.Remove(c.path(name))
}

// A cache file is the SHA-256 of its payload followed by the payload, the
// gob of the layer's entries: a file cut short or changed does not decode
// (see encodeChecked).
func encodeScan(s *layerScan) ([]byte, error) {
	entries := make([]cachedEntry, len(s.entries))
	for i, e := range s.entries {
		entries[i] = cachedEntry{File: e.file, Whiteout: e.whiteout, Opaque: e.opaque, Secrets: e.secrets, Content: e.content}
	}
	return encodeChecked(cachedScan{Entries: entries, Stats: s.stats})
}

func decodeScan(raw []byte) (*layerScan, error) {
	var cs cachedScan
	if err := decodeChecked(raw, &cs); err != nil {
		return nil, err
	}
	s := &layerScan{entries: make([]layerEntry, len(cs.Entries)), stats: cs.Stats}
	for i, e := range cs.Entries {
		s.entries[i] = layerEntry{file: e.File, whiteout: e.Whiteout, opaque: e.Opaque, secrets: e.Secrets, content: e.Content}
	}
	return s, nil
}
