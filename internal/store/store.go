// Package store is the contract of buildgate's stores: Store composes the
// interfaces each use case declares where it consumes the store, so an
// adapter (internal/store/sqlite, internal/store/postgres) that satisfies
// Store serves every part of the gate. internal/store/storetest is the
// conformance suite every adapter passes.
package store

import (
	"context"
	"github.com/buildgate/buildgate/internal/admission"

	"github.com/buildgate/buildgate/internal/alert"
	"github.com/buildgate/buildgate/internal/analysis"
	"github.com/buildgate/buildgate/internal/image"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/server"
	"github.com/buildgate/buildgate/internal/server/anchore"
	"github.com/buildgate/buildgate/internal/server/console"
)

// Store is everything the gate asks of its database.
type Store interface {
	analysis.Store
	analysis.PolicyStore
	analysis.RegistryStore
	alert.Store
	server.Store
	server.PolicyStore
	server.Tokens
	anchore.Store
	console.Store
	admission.Store
	Admin
}

// Admin is what the gate's own commands use: the first admin token, key
// rotation, shutdown.
type Admin interface {
	CreateToken(ctx context.Context, t image.Token, hash string) error
	CountTokens(ctx context.Context) (int, error)
	// ResealSecrets rewrites every sealed secret with fn, given the
	// record it is stored in, all or nothing.
	ResealSecrets(ctx context.Context, fn func(sealed string, rec secret.Record) (string, error)) (int, error)
	Close() error
}
