package catalog

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildgate/buildgate/internal/image"
)

// LayerCache keeps the files pass of each layer (its files with their
// digests, secrets and content-rule matches) in files under a directory,
// keyed by the layer's diff ID and what the pass searched for, so that a
// layer the gate has read once is not hashed and searched again. It holds
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
	byKey  map[string]*list.Element
	size   int64
	hits   int
	misses int
}

// tempFile is what LayerCache writes a cache file to before renaming it.
type tempFile interface {
	io.Writer
	Close() error
	Name() string
}

func createTemp(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }

type cacheFile struct {
	key  string
	size int64
}

// cacheSuffix ends the name of every cache file; others are left alone,
// temporary files (".tmp") are removed.
const cacheSuffix = ".layer"

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
			_ = os.Remove(filepath.Join(dir, name)) // a write that a crash interrupted
			continue
		}
		key, ok := strings.CutSuffix(name, cacheSuffix)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		files = append(files, found{cacheFile{key, fi.Size()}, fi.ModTime()})
	}
	slices.SortFunc(files, func(a, b found) int { return b.mod.Compare(a.mod) })
	c := &LayerCache{dir: dir, max: maxBytes, create: createTemp, lru: list.New(), byKey: map[string]*list.Element{}}
	for _, f := range files {
		c.byKey[f.key] = c.lru.PushBack(&f.cacheFile)
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
	fmt.Fprintf(h, "layerscan v1\nmax %d\n", cfg.MaxSecretFileSize)
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

func (c *LayerCache) path(key string) string { return filepath.Join(c.dir, key+cacheSuffix) }

// cachedEntry is layerEntry as the cache stores it.
type cachedEntry struct {
	File     image.File
	Whiteout bool
	Opaque   bool
	Secrets  []image.Secret
	Content  []string
}

// get returns the scan cached under key, or nil.
func (c *LayerCache) get(key string) *layerScan {
	c.mu.Lock()
	el, ok := c.byKey[key]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if !ok {
		c.count(false)
		return nil
	}
	raw, err := os.ReadFile(c.path(key))
	var scan *layerScan
	if err == nil {
		scan, err = decodeScan(raw)
	}
	if err != nil {
		c.drop(key) // unreadable or corrupt: read the layer again
		c.count(false)
		return nil
	}
	now := time.Now()
	_ = os.Chtimes(c.path(key), now, now) // keeps the order across restarts
	c.count(true)
	return scan
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
	size := int64(len(raw))
	if size > c.max {
		return nil // would push out everything else
	}
	err = c.write(key, raw)
	if errors.Is(err, syscall.ENOSPC) {
		c.mu.Lock()
		c.trim(c.size / 2)
		c.mu.Unlock()
		err = c.write(key, raw)
	}
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("layer cache %s: the disk is full: free space there or lower gate serve --layer-cache-size: %w", c.dir, err)
		}
		return fmt.Errorf("layer cache %s: %w", c.dir, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok { // another worker put the same layer
		c.size -= el.Value.(*cacheFile).size
		c.lru.Remove(el)
	}
	c.byKey[key] = c.lru.PushFront(&cacheFile{key, size})
	c.size += size
	c.trim(c.max)
	return nil
}

// write writes raw to key's file through a temporary file, so that the
// file is whole or absent.
func (c *LayerCache) write(key string, raw []byte) error {
	f, err := c.create(c.dir, key+"-*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(raw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.path(key))
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
		delete(c.byKey, f.key)
		c.size -= f.size
		_ = os.Remove(c.path(f.key))
	}
}

// drop forgets key and removes its file.
func (c *LayerCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.size -= el.Value.(*cacheFile).size
		c.lru.Remove(el)
		delete(c.byKey, key)
	}
	_ = os.Remove(c.path(key))
}

// A cache file is the SHA-256 of its payload followed by the payload, the
// gob of the layer's entries: a file cut short or changed does not decode.
func encodeScan(s *layerScan) ([]byte, error) {
	entries := make([]cachedEntry, len(s.entries))
	for i, e := range s.entries {
		entries[i] = cachedEntry{File: e.file, Whiteout: e.whiteout, Opaque: e.opaque, Secrets: e.secrets, Content: e.content}
	}
	var buf bytes.Buffer
	buf.Write(make([]byte, sha256.Size))
	if err := gob.NewEncoder(&buf).Encode(entries); err != nil {
		return nil, fmt.Errorf("encoding a layer's files: %w", err)
	}
	raw := buf.Bytes()
	sum := sha256.Sum256(raw[sha256.Size:])
	copy(raw, sum[:])
	return raw, nil
}

func decodeScan(raw []byte) (*layerScan, error) {
	if len(raw) < sha256.Size {
		return nil, errors.New("layer cache file cut short")
	}
	if sum := sha256.Sum256(raw[sha256.Size:]); !bytes.Equal(sum[:], raw[:sha256.Size]) {
		return nil, errors.New("layer cache file does not match its checksum")
	}
	var entries []cachedEntry
	if err := gob.NewDecoder(bytes.NewReader(raw[sha256.Size:])).Decode(&entries); err != nil {
		return nil, fmt.Errorf("decoding a layer cache file: %w", err)
	}
	s := &layerScan{entries: make([]layerEntry, len(entries))}
	for i, e := range entries {
		s.entries[i] = layerEntry{file: e.File, whiteout: e.Whiteout, opaque: e.Opaque, secrets: e.Secrets, content: e.Content}
	}
	return s, nil
}
