package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func FuzzParseBundle(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no example bundles: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		// Compact seeds keep the fuzzer's minimisation of new inputs short.
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	for _, s := range []string{
		`{}`, `null`, `{"id":"b","version":"1_0"}`,
		`{"id":"b","version":"1_0","allowlists":[{"id":"w","version":"1_0","items":[{"id":"i","gate":"x","trigger_id":"regexp:a+","expires_on":"2026-01-01T00:00:00Z"}]}]}`,
		`{"id":"b","version":"1_0","policies":[{"id":"p","version":"1_0","rules":[{"id":"r","gate":"metadata","trigger":"attribute","action":"warn","params":[{"name":"attribute","value":"size"},{"name":"check","value":"in"},{"name":"value","value":1e3}]}]}],"mappings":[{"id":"m","registry":"*","repository":"regexp:.*","image":{"type":"id","value":"x"},"policy_ids":["p"]}]}`,
	} {
		f.Add([]byte(s))
	}
	in := paymentsFacts("sha256:1111111111111111111111111111111111111111111111111111111111111111")
	in.Facts.Dockerfile += "HEALTHCHECK CMD true\nEXPOSE 22\n"
	in.Facts.Metadata.History = nil

	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshalling an accepted bundle: %v", err)
		}
		b2, err := ParseBundle(out)
		if err != nil {
			t.Fatalf("re-parsing an accepted bundle: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(b, b2) {
			t.Fatalf("round trip changed the bundle:\n%+v\n%+v", b, b2)
		}
		for _, tag := range []string{"registry.acme.io/payments/api:v2.3.1", "nginx", ""} {
			in.Tag = tag
			if _, err := Evaluate(b, in, now); err != nil {
				t.Fatalf("evaluating an accepted bundle: %v", err)
			}
		}
	})
}
