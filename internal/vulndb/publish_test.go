package vulndb_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/vulndb"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

// TestPublish: Publish gets the validated archive, byte for byte, with
// the DB it holds and its source, before the swap; its error refuses the
// archive and keeps the DB in use.
func TestPublish(t *testing.T) {
	want, err := os.ReadFile(vulndbtest.Archive(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	var gotInfo buildgate.DBInfo
	var gotSource string
	var refuse error
	opts := vulndb.DefaultOptions()
	opts.Publish = func(_ context.Context, path string, info buildgate.DBInfo, source string) error {
		if refuse != nil {
			return refuse
		}
		b, err := os.ReadFile(path)
		got, gotInfo, gotSource = b, info, source
		return err
	}
	m, err := vulndb.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	refuse = errors.New("store unreachable")
	_, err = m.Import(context.Background(), bytes.NewReader(want))
	if err == nil || !strings.Contains(err.Error(), "store unreachable") || m.Ready() {
		t.Fatalf("import with a refusing Publish: %v, ready %v; want the refusal and no DB", err, m.Ready())
	}
	refuse = nil
	if _, err := m.ImportFileAs(context.Background(), vulndbtest.Archive(t), "store:1"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || gotSource != "store:1" || !gotInfo.Built.Equal(vulndbtest.Timestamp) {
		t.Fatalf("published %d bytes from %q built %v; want the %d-byte archive from store:1 built %v",
			len(got), gotSource, gotInfo.Built, len(want), vulndbtest.Timestamp.Format(time.RFC3339))
	}
	if !m.Ready() || !m.Info().Built.Equal(vulndbtest.Timestamp) {
		t.Fatalf("after a published import: ready %v, built %v", m.Ready(), m.Info().Built)
	}
}
