package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/store"
	"github.com/buildgate/buildgate/internal/testclock"
)

// testDBArchives: an archive larger than one chunk reads back whole with
// its checksum; a newer one replaces it, and the replaced one is gone.
func testDBArchives(t *testing.T, db store.Store, _ *testclock.Clock) {
	ctx := context.Background()
	if a, err := db.LatestDBArchive(ctx); err != nil || a != nil {
		t.Fatalf("empty store: LatestDBArchive = %+v, %v", a, err)
	}
	body := bytes.Repeat([]byte("vulnerability.db "), 200_000) // 3.4 MB: several chunks
	first, err := db.PutDBArchive(ctx, bytes.NewReader(body), t0)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if first.Checksum != "sha256:"+hex.EncodeToString(sum[:]) || first.Size != int64(len(body)) || !first.Built.Equal(t0) {
		t.Fatalf("stored %+v, want %d bytes with the archive's checksum", first, len(body))
	}
	latest, err := db.LatestDBArchive(ctx)
	if err != nil || latest == nil || latest.ID != first.ID || latest.Checksum != first.Checksum || !latest.Built.Equal(t0) {
		t.Fatalf("LatestDBArchive = %+v, %v; want %+v", latest, err, first)
	}
	var got bytes.Buffer
	if err := db.ReadDBArchive(ctx, latest, &got); err != nil || !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("ReadDBArchive: %d bytes, %v; want the %d stored", got.Len(), err, len(body))
	}
	// A forged description does not pass for the archive.
	forged := *latest
	forged.Checksum = "sha256:00"
	if err := db.ReadDBArchive(ctx, &forged, &bytes.Buffer{}); err == nil {
		t.Error("an archive read against the wrong checksum passed")
	}

	second, err := db.PutDBArchive(ctx, bytes.NewReader([]byte("newer")), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if second.Generation <= first.Generation {
		t.Errorf("generation %d after %d", second.Generation, first.Generation)
	}
	if latest, _ := db.LatestDBArchive(ctx); latest == nil || latest.ID != second.ID {
		t.Errorf("latest after a newer archive = %+v", latest)
	}
	err = db.ReadDBArchive(ctx, first, &bytes.Buffer{})
	if buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("reading a replaced archive: %v, want not found", err)
	}
}

// testPendingWorkClaims: of two gates, one claims pending work until its
// lease runs out or it releases it; a new request drops the claim.
func testPendingWorkClaims(t *testing.T, db store.Store, clock *testclock.Clock) {
	ctx := context.Background()
	claim := func(owner string) (string, bool) {
		t.Helper()
		arg, ok, err := db.ClaimPendingWork(ctx, "rematch", owner, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return arg, ok
	}
	if _, ok := claim("a"); ok {
		t.Fatal("claimed work that is not pending")
	}
	if err := db.SetPendingWork(ctx, "rematch", "build-1"); err != nil {
		t.Fatal(err)
	}
	if arg, ok := claim("a"); !ok || arg != "build-1" {
		t.Fatalf("first claim = %q, %v", arg, ok)
	}
	if _, ok := claim("b"); ok {
		t.Fatal("b claimed work a holds")
	}
	clock.Advance(50 * time.Second)
	if _, ok := claim("a"); !ok {
		t.Fatal("a could not renew its claim")
	}
	clock.Advance(50 * time.Second)
	if _, ok := claim("b"); ok {
		t.Fatal("b claimed work whose renewed claim holds")
	}
	clock.Advance(11 * time.Second)
	if arg, ok := claim("b"); !ok || arg != "build-1" {
		t.Fatalf("after a's lease ran out b claimed %q, %v", arg, ok)
	}
	if err := db.ReleasePendingWork(ctx, "rematch", "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := claim("a"); ok {
		t.Fatal("a's release of a claim it lost freed b's")
	}
	if err := db.ReleasePendingWork(ctx, "rematch", "b"); err != nil {
		t.Fatal(err)
	}
	if _, ok := claim("a"); !ok {
		t.Fatal("a could not claim released work")
	}
	// The same request again keeps the claim; a new request is new work:
	// anyone may claim it.
	if err := db.SetPendingWork(ctx, "rematch", "build-1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := claim("b"); ok {
		t.Fatal("b claimed work a holds after the same request came again")
	}
	if err := db.SetPendingWork(ctx, "rematch", "build-2"); err != nil {
		t.Fatal(err)
	}
	if arg, ok := claim("b"); !ok || arg != "build-2" {
		t.Fatalf("claim of the new request = %q, %v", arg, ok)
	}
	// Work requested again after the pass that clears it started stays.
	started := clock.Now()
	clock.Advance(time.Second)
	if err := db.SetPendingWork(ctx, "rematch", "build-2"); err != nil {
		t.Fatal(err)
	}
	if cleared, err := db.ClearPendingWork(ctx, "rematch", "build-2", started); err != nil || cleared {
		t.Fatalf("cleared work requested again after the pass started: %v, %v", cleared, err)
	}
	if cleared, err := db.ClearPendingWork(ctx, "rematch", "build-1", clock.Now()); err != nil || cleared {
		t.Fatalf("cleared work of another argument: %v, %v", cleared, err)
	}
	if cleared, err := db.ClearPendingWork(ctx, "rematch", "build-2", clock.Now()); err != nil || !cleared {
		t.Fatalf("clearing the work: %v, %v", cleared, err)
	}
	if _, ok := claim("b"); ok {
		t.Fatal("claimed cleared work")
	}
}

// testConsoleSessions: a session is found by its id hash until it expires
// or is deleted; saving one drops the expired.
func testConsoleSessions(t *testing.T, db store.Store, clock *testclock.Clock) {
	ctx := context.Background()
	now := clock.Now()
	for _, cs := range []buildgate.ConsoleSession{
		{IDHash: "short", SealedToken: "v1:a:x", CreatedAt: now, ExpiresAt: now.Add(time.Minute)},
		{IDHash: "long", SealedToken: "v1:b:y", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := db.SaveConsoleSession(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.ConsoleSession(ctx, "long")
	if err != nil || got.SealedToken != "v1:b:y" || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("ConsoleSession = %+v, %v", got, err)
	}
	if _, err := db.ConsoleSession(ctx, "other"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("an unknown session: %v, want not found", err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := db.ConsoleSession(ctx, "short"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("an expired session: %v, want not found", err)
	}
	if err := db.DeleteConsoleSession(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConsoleSession(ctx, "long"); buildgate.ErrorCode(err) != buildgate.ENOTFOUND {
		t.Errorf("a deleted session: %v, want not found", err)
	}
	// The expired row is dropped when the next session is saved, so the
	// same id hash can be stored again.
	if err := db.SaveConsoleSession(ctx, buildgate.ConsoleSession{IDHash: "short", SealedToken: "v1:c:z", CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("saving over an expired session: %v", err)
	}
}
