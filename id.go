package buildgate

import (
	"crypto/rand"
	"encoding/hex"
)

// NewID returns a random identifier of 32 hex digits (128 bits from
// crypto/rand, whose Read never fails): the one way buildgate names
// records, deliveries and work files.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
