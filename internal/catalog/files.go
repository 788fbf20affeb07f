package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/buildgate/buildgate"
)

// binarySniffSize is how much of a file is looked at for a NUL byte to
// decide that it is binary and not worth searching.
const binarySniffSize = 8 << 10

// File types reported in buildgate.File.Type.
const (
	TypeFile     = "file"
	TypeDir      = "dir"
	TypeSymlink  = "symlink"
	TypeHardlink = "hardlink"
	TypeOther    = "other"
)

// Whiteout markers of the OCI image layer spec.
const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// fileScan is what the squashed filesystem holds.
type fileScan struct {
	files          []buildgate.File
	secrets        []buildgate.Secret
	contentMatches map[string][]string
}

// layerScan is what one layer's tar holds, in tar order.
type layerScan struct {
	entries []layerEntry
	// stats is what the limits look at, to count a cached layer that is
	// not read again.
	stats layerStats
}

// layerStats are a layer tar's figures that the limits bound.
type layerStats struct {
	Entries int   // tar entries
	MaxName int   // longest entry name or link name, in bytes
	MaxSize int64 // largest entry
}

func (s *layerStats) add(h *tar.Header) {
	s.Entries++
	s.MaxName = max(s.MaxName, len(h.Name), len(h.Linkname))
	s.MaxSize = max(s.MaxSize, h.Size)
}

// layerEntry is one tar entry of a layer.
type layerEntry struct {
	file buildgate.File
	// whiteout marks ".wh.NAME": file.Path is the path it removes.
	whiteout bool
	// opaque marks ".wh..wh..opq": file.Path is the directory whose lower
	// contents it hides.
	opaque  bool
	secrets []buildgate.Secret
	content []string // names of the content rules that matched
}

// scanner reads layer tars, hashing regular files (SHA-256, and MD5 to
// compare with dpkg's digests) and searching the small text ones. It holds
// buffers reused between files; one scanner reads one layer at a time.
type scanner struct {
	secretRules  []compiledRule
	contentRules []compiledRule
	maxSize      int64
	// budget, when set, counts the entries read against the limits.
	budget *budget

	hasher  hash.Hash // SHA-256
	md5     hash.Hash
	both    io.Writer // writes to hasher and md5
	copyBuf []byte
	buf     []byte // file content
	lower   []byte // ASCII-lower-cased copy of buf
}

func newScanner(cfg Config, secretRules, contentRules []compiledRule) *scanner {
	sc := &scanner{
		secretRules:  secretRules,
		contentRules: contentRules,
		maxSize:      cfg.MaxSecretFileSize,
		hasher:       sha256.New(),
		md5:          md5.New(),
		copyBuf:      make([]byte, 256<<10),
	}
	sc.both = io.MultiWriter(sc.hasher, sc.md5)
	return sc
}

// scanLayer reads one uncompressed layer tar.
func (sc *scanner) scanLayer(ctx context.Context, r io.Reader) (*layerScan, error) {
	out := &layerScan{}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		if sc.budget != nil {
			if err := sc.budget.entry(hdr); err != nil {
				return nil, err
			}
		}
		out.stats.add(hdr)
		p := absPath(hdr.Name)
		if p == "/" {
			continue
		}
		dir, base := path.Split(p)
		if base == opaqueWhiteout {
			out.entries = append(out.entries, layerEntry{file: buildgate.File{Path: path.Clean(dir)}, opaque: true})
			continue
		}
		if name, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
			out.entries = append(out.entries, layerEntry{file: buildgate.File{Path: path.Join(dir, name)}, whiteout: true})
			continue
		}

		mode := hdr.FileInfo().Mode()
		e := layerEntry{file: buildgate.File{
			Path: p,
			Size: hdr.Size,
			Mode: uint32(mode),
			SUID: mode&os.ModeSetuid != 0,
			SGID: mode&os.ModeSetgid != 0,
		}}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // TypeRegA still appears in old layers
			e.file.Type = TypeFile
			if err := sc.scanFile(tr, &e); err != nil {
				return nil, fmt.Errorf("reading %s: %w", p, err)
			}
		case tar.TypeDir:
			e.file.Type = TypeDir
		case tar.TypeSymlink:
			e.file.Type = TypeSymlink
			e.file.LinkDest = hdr.Linkname
		case tar.TypeLink:
			e.file.Type = TypeHardlink
			e.file.LinkDest = absPath(hdr.Linkname)
		default:
			e.file.Type = TypeOther
		}
		out.entries = append(out.entries, e)
	}
}

// countEntries reads a layer tar's headers only, counting them against b
// (when set): what a layer whose scan is cached still costs.
func countEntries(ctx context.Context, r io.Reader, b *budget) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		if b != nil {
			if err := b.entry(hdr); err != nil {
				return err
			}
		}
	}
}

// scanFile hashes a regular file and, when it is small, searches it.
func (sc *scanner) scanFile(r io.Reader, e *layerEntry) error {
	sc.hasher.Reset()
	sc.md5.Reset()
	size := e.file.Size
	if size > sc.maxSize || len(sc.secretRules)+len(sc.contentRules) == 0 {
		if _, err := io.CopyBuffer(sc.both, r, sc.copyBuf); err != nil {
			return err
		}
	} else {
		if int64(cap(sc.buf)) < size {
			sc.buf = make([]byte, size)
		}
		content := sc.buf[:size]
		if _, err := io.ReadFull(r, content); err != nil {
			return err
		}
		sc.hasher.Write(content)
		sc.md5.Write(content)
		sc.search(content, e)
	}
	var sum [sha256.Size]byte
	e.file.SHA256 = hex.EncodeToString(sc.hasher.Sum(sum[:0]))
	e.file.MD5 = hex.EncodeToString(sc.md5.Sum(sum[:0]))
	return nil
}

// search records, for a text file, every line that a secret rule matches
// and every content rule that matches some line. It never records the
// matched text.
func (sc *scanner) search(content []byte, e *layerEntry) {
	if bytes.IndexByte(content[:min(len(content), binarySniffSize)], 0) >= 0 {
		return
	}
	if cap(sc.lower) < len(content) {
		sc.lower = make([]byte, len(content))
	}
	lower := sc.lower[:len(content)]
	for i, c := range content {
		lower[i] = lowerASCII(c)
	}
	for _, r := range sc.secretRules {
		eachMatchingLine(r, content, lower, func(line int) bool {
			e.secrets = append(e.secrets, buildgate.Secret{Rule: r.name, Path: e.file.Path, Line: line})
			return true
		})
	}
	for _, r := range sc.contentRules {
		eachMatchingLine(r, content, lower, func(int) bool {
			e.content = append(e.content, r.name)
			return false
		})
	}
}

// squash applies layers, lowest first, the way go-containerregistry's
// mutate.Extract does: it walks them from the top, an entry hides the same
// path below it, a non-directory or a whiteout hides everything under its
// path below it, and an opaque marker hides what lower layers have under
// its directory. Unlike mutate.Extract it keeps links that point outside
// the root: they are worth reporting.
func squash(layers []*layerScan) *fileScan {
	out := &fileScan{}
	hides := map[string]bool{} // path seen -> hides what is under it
	opaque := map[string]bool{}
	for i := len(layers) - 1; i >= 0; i-- {
		layerOpaque := map[string]bool{}
		for _, e := range layers[i].entries {
			p := e.file.Path
			if e.opaque {
				layerOpaque[p] = true
				continue
			}
			if _, seen := hides[p]; seen && !e.whiteout {
				continue
			}
			if underAny(hides, p, true) || underAny(opaque, p, false) {
				continue
			}
			hides[p] = e.whiteout || e.file.Type != TypeDir
			if e.whiteout {
				continue
			}
			out.files = append(out.files, e.file)
			out.secrets = append(out.secrets, e.secrets...)
			for _, name := range e.content {
				if out.contentMatches == nil {
					out.contentMatches = map[string][]string{}
				}
				out.contentMatches[name] = append(out.contentMatches[name], p)
			}
		}
		for d := range layerOpaque {
			opaque[d] = true
		}
	}

	byPath := make(map[string]int, len(out.files))
	for i, f := range out.files {
		byPath[f.Path] = i
	}
	// a hard link has no content of its own: describe it by its target
	for i := range out.files {
		f := &out.files[i]
		if f.Type != TypeHardlink {
			continue
		}
		if j, ok := byPath[f.LinkDest]; ok && out.files[j].Type == TypeFile {
			f.Size = out.files[j].Size
			f.SHA256 = out.files[j].SHA256
			f.MD5 = out.files[j].MD5
		}
	}

	sort.Slice(out.files, func(i, j int) bool { return out.files[i].Path < out.files[j].Path })
	sort.Slice(out.secrets, func(i, j int) bool {
		a, b := out.secrets[i], out.secrets[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Rule < b.Rule
	})
	for _, paths := range out.contentMatches {
		sort.Strings(paths)
	}
	return out
}

// underAny reports whether a directory above p is in m (with value true,
// when onlyTrue).
func underAny(m map[string]bool, p string, onlyTrue bool) bool {
	for {
		dir := path.Dir(p)
		if dir == p {
			return false
		}
		if v, ok := m[dir]; ok && (v || !onlyTrue) {
			return true
		}
		p = dir
	}
}

// eachMatchingLine calls fn with the 1-based number of each line of
// content that r matches, until fn returns false. Lines are split on '\n';
// a trailing '\r' is not part of the line. When r has a required literal,
// only the lines holding it are tried.
func eachMatchingLine(r compiledRule, content, lower []byte, fn func(line int) bool) {
	if r.literal == nil {
		line := 1
		for start := 0; start <= len(content); line++ {
			end := bytes.IndexByte(content[start:], '\n')
			if end < 0 {
				end = len(content)
			} else {
				end += start
			}
			if start == len(content) && start > 0 && content[start-1] == '\n' {
				return // no line after a final newline
			}
			if r.re.Match(trimCR(content[start:end])) && !fn(line) {
				return
			}
			start = end + 1
		}
		return
	}

	line, counted := 1, 0 // line is the number of the line at offset counted
	for from := 0; from < len(lower); {
		i := bytes.Index(lower[from:], r.literal)
		if i < 0 {
			return
		}
		i += from
		start := bytes.LastIndexByte(lower[:i], '\n') + 1
		end := bytes.IndexByte(lower[i:], '\n')
		if end < 0 {
			end = len(lower)
		} else {
			end += i
		}
		line += bytes.Count(content[counted:start], []byte{'\n'})
		counted = start
		if r.re.Match(trimCR(content[start:end])) && !fn(line) {
			return
		}
		from = end + 1
	}
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// absPath turns a tar entry name into an absolute, clean path.
func absPath(name string) string {
	return path.Clean("/" + name)
}
