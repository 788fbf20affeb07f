package sqlstore

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// digestDoc is a JSON document of n file entries with their (random
// looking, incompressible) digests, like the file list of an SBOM.
func digestDoc(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"files":[`)
	for i := range n {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"path":"/usr/lib/file-%d","sha256":"%s"}`, i, hex.EncodeToString(sum[:]))
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUnpackReadsEveryFormat: a document reads back the same whether this
// gate stored it (zstd) or an older one (gzip, or plain JSON); an empty
// one stays empty.
func TestUnpackReadsEveryFormat(t *testing.T) {
	doc := digestDoc(1000)
	packed := pack(doc)
	if !bytes.HasPrefix(packed, zstdMagic) || len(packed) >= len(doc) {
		t.Fatalf("pack stored %d bytes of %d (prefix %x), want a smaller zstd frame", len(packed), len(doc), packed[:4])
	}
	for name, stored := range map[string][]byte{"zstd": packed, "gzip": gzipped(t, doc), "plain": doc} {
		got, err := unpack(stored)
		if err != nil || !bytes.Equal(got, doc) {
			t.Errorf("%s: unpack = %d bytes, %v; want the %d of the document", name, len(got), err, len(doc))
		}
	}
	// A document past the shared encoder's window gets an encoder whose
	// window holds it: the second half, a copy of the first 1.6 MB, is
	// stored as references to it.
	half := digestDoc(16_000)
	big := append(slices.Clone(half), half...)
	packedBig := pack(big)
	if len(half) <= smallWindow || len(packedBig) > len(pack(half))+len(half)/100 {
		t.Errorf("pack of a %d-byte document that repeats its first half = %d bytes, want about its half's %d", len(big), len(packedBig), len(pack(half)))
	}
	if got, err := unpack(packedBig); err != nil || !bytes.Equal(got, big) {
		t.Errorf("unpack(pack(%d bytes)) = %d bytes, %v", len(big), len(got), err)
	}
	if got := pack(nil); len(got) != 0 || got == nil {
		t.Errorf("pack(nil) = %#v, want an empty, non-nil value (a NOT NULL column)", got)
	}
	if got, err := unpack([]byte{}); got != nil || err != nil {
		t.Errorf("unpack(empty) = %q, %v", got, err)
	}
	if _, err := unpack(append(slices.Clone(zstdMagic), "garbage"...)); err == nil || !strings.Contains(err.Error(), "zstd") {
		t.Errorf("a corrupt zstd frame: %v, want an error naming zstd", err)
	}
	if _, err := unpack(append(slices.Clone(gzipMagic), "garbage"...)); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("a corrupt gzip stream: %v, want an error naming gzip", err)
	}
}

// TestPackWithDictionary: a document compressed with a dictionary it
// shares its digests with stores what it shares as references, reads back
// with that dictionary (however long: past the 8 MiB default window) and
// is refused, with a clear error, without it.
func TestPackWithDictionary(t *testing.T) {
	for _, n := range []int{1000, 120_000} {
		dict := digestDoc(n)
		// The document holds the dictionary's first and last entries,
		// which the dictionary holds already.
		doc := append(append([]byte{}, dict[:40_000]...), dict[len(dict)-40_000:]...)
		alone := pack(doc)
		with, err := packWith(dict, doc)
		if err != nil {
			t.Fatal(err)
		}
		if len(with)*4 > len(alone) {
			t.Errorf("dictionary of %d bytes: %d bytes with it, %d without; want a quarter at most", len(dict), len(with), len(alone))
		}
		got, err := unpackWith(dict, with)
		if err != nil || !bytes.Equal(got, doc) {
			t.Fatalf("dictionary of %d bytes: unpackWith = %d bytes, %v; want the %d of the document", len(dict), len(got), err, len(doc))
		}
		if _, err := unpackWith(nil, with); err == nil || !strings.Contains(err.Error(), "dictionary") {
			t.Errorf("read without its dictionary: %v, want an error naming the dictionary", err)
		}
		if _, err := unpackWith(bytes.ToUpper(dict), with); err == nil {
			t.Errorf("dictionary of %d bytes, read with another: no error", len(dict))
		}
		// several documents with one encoder: each reads back alone
		docs := [][]byte{doc, dict[len(dict)/2:], {}, []byte("null")}
		all, err := packAllWith(dict, docs...)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range all {
			if got, err := unpackWith(dict, b); err != nil || !bytes.Equal(got, docs[i]) {
				t.Errorf("dictionary of %d bytes: document %d of packAllWith read back as %d bytes, %v; want %d", len(dict), i, len(got), err, len(docs[i]))
			}
		}
		if len(all[1])*10 > len(docs[1]) {
			t.Errorf("dictionary of %d bytes: its second half packs to %d bytes, want a tenth at most", len(dict), len(all[1]))
		}
	}
	// Without a dictionary, or from an older gate, it reads as unpack does.
	doc := digestDoc(10)
	plain, err := packWith(nil, doc)
	if err != nil {
		t.Fatal(err)
	}
	for name, stored := range map[string][]byte{"no dictionary": plain, "gzip": gzipped(t, doc), "plain": doc} {
		if got, err := unpackWith([]byte(`{"unused":1}`), stored); err != nil || !bytes.Equal(got, doc) {
			t.Errorf("%s: unpackWith = %q, %v", name, got, err)
		}
	}
}
