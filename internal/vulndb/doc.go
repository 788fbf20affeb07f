// Package vulndb is buildgate's grype adapter: it builds grype v6
// vulnerability DBs from vunnel provider workspaces and OSV records, owns
// the DB the gate matches with (import, update, status, atomic swap) and
// matches syft-json SBOMs against it exactly as grype's CLI would, keeping
// the DB open between matches.
//
// Layout of the data directory, under <data>/vulndb:
//
//	current -> db-<built>-<rand>   symlink to the DB in use, swapped by rename
//	db-<built>-<rand>/             vulnerability.db + import.json, never changed once active
//	staging-*/                     scratch space of a running import or update
//	last_update.json               the last update attempt and its error
package vulndb
