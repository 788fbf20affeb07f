package sqlstore

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// The store keeps its big documents (SBOMs, file lists, packages, matches,
// verdicts) compressed with zstd at rest; the fields queries select on
// stay in columns of their own. Rows written before are read as they
// were stored: gzip, or plain JSON.
//
// An analysis's package and file lists repeat much of its SBOM (paths,
// versions, digests no compressor can shrink), so they are compressed
// with the SBOM as a dictionary: what they share with it is stored once.
var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	gzipMagic = []byte{0x1f, 0x8b}

	// One encoder serves every document up to its window (matches,
	// verdicts, package lists) and one decoder every call: EncodeAll and
	// DecodeAll are safe for concurrent use and reuse their state. An
	// encoder keeps its window's history and its tables for good (with
	// Go's default 8 MiB window, 22 MiB for each of its GOMAXPROCS
	// states), so this one keeps a small window, and a bigger document
	// gets an encoder of its own (bigEncoder).
	encoder = must(zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		zstd.WithWindowSize(smallWindow), zstd.WithLowerEncoderMem(true)))
	decoder = must(zstd.NewReader(nil))
)

// smallWindow is the window of the shared encoder: documents up to it
// are packed with it, as well as with any bigger window.
const smallWindow = 1 << 20

// maxPackWindow bounds the window of a document packed alone: a longer
// one's references reach back this far.
const maxPackWindow = 8 << 20

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// pack compresses a document for storage; an empty one stays empty.
func pack(b []byte) []byte {
	if len(b) == 0 {
		return []byte{}
	}
	if len(b) <= smallWindow {
		return encoder.EncodeAll(b, make([]byte, 0, len(b)/8))
	}
	enc := must(bigEncoder(min(windowFor(len(b)), maxPackWindow))) // valid options
	defer enc.Close()
	return enc.EncodeAll(b, make([]byte, 0, len(b)/8))
}

// bigEncoder is an encoder for one big document (an SBOM of some MB),
// with a window that holds it: its memory is freed with it, where the
// shared encoder would keep a big window's for good.
func bigEncoder(window int, opts ...zstd.EOption) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, append([]zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(window), zstd.WithLowerEncoderMem(true)}, opts...)...)
}

// unpack returns the document pack (or an older gate: gzip, or nothing)
// stored.
func unpack(b []byte) ([]byte, error) {
	switch {
	case len(b) == 0:
		return nil, nil
	case bytes.HasPrefix(b, zstdMagic):
		out, err := decoder.DecodeAll(b, nil)
		if err != nil {
			return nil, fmt.Errorf("decompressing (zstd): %w", err)
		}
		return out, nil
	case bytes.HasPrefix(b, gzipMagic):
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("decompressing (gzip): %w", err)
		}
		out, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("decompressing (gzip): %w", err)
		}
		return out, nil
	}
	return b, nil
}

// sbomDict is the dictionary ID of a frame compressed with the SBOM of its
// analysis as dictionary.
const sbomDict = 1

// packWith compresses a document with dict as a raw dictionary: what it
// shares with dict is stored as references. unpackWith needs the same
// dict.
func packWith(dict, b []byte) ([]byte, error) {
	out, err := packAllWith(dict, b)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// packAllWith compresses each document as packWith does, with one
// encoder: it indexes dict once for all of them.
func packAllWith(dict []byte, docs ...[]byte) ([][]byte, error) {
	out := make([][]byte, len(docs))
	longest := 0
	for _, b := range docs {
		longest = max(longest, len(b))
	}
	if len(dict) == 0 || longest == 0 {
		for i, b := range docs {
			out[i] = pack(b)
		}
		return out, nil
	}
	enc, err := bigEncoder(windowFor(len(dict)+longest), zstd.WithEncoderDictRaw(sbomDict, dict))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	for i, b := range docs {
		if len(b) < minDictDoc {
			out[i] = pack(b)
			continue
		}
		out[i] = enc.EncodeAll(b, make([]byte, 0, len(b)/8))
	}
	return out, nil
}

// minDictDoc is the size under which a document is packed without the
// dictionary ("null", "[]"): each frame with it starts from the
// dictionary's tables, copied, which costs more than it saves.
const minDictDoc = 64

// windowFor is the smallest zstd window (a power of two from 1 MiB to 64
// MiB) that holds n bytes, so references reach the start of the
// dictionary; past 64 MiB they reach its last 64 MiB, which bounds the
// memory an encoder and a decoder take. An encoder's buffers grow with its
// window: an 8 MiB window for an SBOM of 600 KB took 17 MB more per
// analysis, and as long, for the same output.
func windowFor(n int) int {
	w := 1 << 20
	for w < n && w < 64<<20 {
		w <<= 1
	}
	return w
}

// unpackWith returns the document packWith(dict, ...) stored, or pack, or
// an older gate.
func unpackWith(dict, b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, zstdMagic) {
		return unpack(b)
	}
	var h zstd.Header
	if err := h.Decode(b); err != nil {
		return nil, fmt.Errorf("decompressing (zstd): %w", err)
	}
	if h.DictionaryID == 0 {
		return unpack(b)
	}
	if h.DictionaryID != sbomDict || len(dict) == 0 {
		return nil, fmt.Errorf("decompressing (zstd): compressed with dictionary %d, which this record does not hold", h.DictionaryID)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderDictRaw(sbomDict, dict))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	out, err := dec.DecodeAll(b, nil)
	if err != nil {
		return nil, fmt.Errorf("decompressing (zstd): %w", err)
	}
	return out, nil
}

func packJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return pack(b), nil
}

func unpackJSON(b []byte, v any) error { return unpackJSONWith(nil, b, v) }

func unpackJSONWith(dict, b []byte, v any) error {
	raw, err := unpackWith(dict, b)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}
