// Package store is the contract of buildgate's stores: Store composes the
// interfaces each use case declares where it consumes the store, so an
// adapter (internal/store/sqlite, internal/store/postgres) that satisfies
// Store serves every part of the gate. internal/store/storetest is the
// conformance suite every adapter passes.
package store

import (
	"context"
	"io"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/admission"
	"github.com/buildgate/buildgate/internal/alert"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/server"
	"github.com/buildgate/buildgate/internal/server/anchore"
	"github.com/buildgate/buildgate/internal/server/console"
)

// Store is everything the gate asks of its database.
type Store interface {
	analysis.Store
	analysis.FactsEncoder
	analysis.Uploads
	analysis.PolicyStore
	analysis.VEXStore
	analysis.RegistryStore
	alert.Store
	server.Store
	server.PolicyStore
	server.Tokens
	anchore.Store
	console.Store
	admission.Store
	DBArchives
	Admin
}

// DBArchives keeps the vulnerability DB archive of a shared store, from
// which every replica loads the DB one of them imported or updated to.
type DBArchives interface {
	// PutDBArchive stores an archive as the newest and drops older ones.
	PutDBArchive(ctx context.Context, r io.Reader, built time.Time) (*buildgate.DBArchive, error)
	// LatestDBArchive describes the newest archive; nil when none.
	LatestDBArchive(ctx context.Context) (*buildgate.DBArchive, error)
	// ReadDBArchive writes archive a to w, checked against its checksum.
	ReadDBArchive(ctx context.Context, a *buildgate.DBArchive, w io.Writer) error
}

// Admin is what the gate's own commands use: the first admin token, key
// rotation, shutdown.
type Admin interface {
	CreateToken(ctx context.Context, t buildgate.Token, hash string) error
	CountTokens(ctx context.Context) (int, error)
	// ResealSecrets rewrites every sealed secret with fn, given the
	// record it is stored in, all or nothing.
	ResealSecrets(ctx context.Context, fn func(sealed string, rec secret.Record) (string, error)) (int, error)
	Close() error
}
