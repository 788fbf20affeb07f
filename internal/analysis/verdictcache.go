package analysis

import (
	"container/list"
	"sync"
	"time"

	"github.com/buildgate/buildgate/internal/policy"
)

// verdictCache keeps decoded verdicts in memory, least recently used
// first out past its size in bytes (the size of each verdict's JSON). An
// entry answers only for the inputs it was evaluated from and while time
// alone leaves it unchanged; the store keeps the same verdict, so a
// verdict dropped here is read from there.
type verdictCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // of *verdictEntry, most recent first
	byKey map[string]*list.Element
}

type verdictEntry struct {
	key     string // digest, tag and policy id
	inputs  string
	from    time.Time // evaluated at
	until   time.Time // zero: no time limit
	verdict *policy.Verdict
	size    int64
}

func newVerdictCache(maxBytes int64) *verdictCache {
	return &verdictCache{max: maxBytes, order: list.New(), byKey: map[string]*list.Element{}}
}

// fresh reports whether a verdict evaluated at from, valid until until,
// answers at now.
func fresh(from, until, now time.Time) bool {
	return !now.Before(from) && (until.IsZero() || now.Before(until))
}

// get returns a copy of the verdict stored for key if it was evaluated
// from inputs and is fresh at now.
func (c *verdictCache) get(key, inputs string, now time.Time) *policy.Verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return nil
	}
	e := el.Value.(*verdictEntry)
	if e.inputs != inputs || !fresh(e.from, e.until, now) {
		return nil
	}
	c.order.MoveToFront(el)
	v := *e.verdict
	return &v
}

// put stores a verdict (which nobody modifies afterwards) for key,
// replacing the one there.
func (c *verdictCache) put(key, inputs string, until time.Time, v *policy.Verdict, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.remove(el)
	}
	if size > c.max {
		return
	}
	e := &verdictEntry{key: key, inputs: inputs, from: v.EvaluatedAt, until: until, verdict: v, size: size}
	c.byKey[key] = c.order.PushFront(e)
	c.size += size
	for c.size > c.max {
		c.remove(c.order.Back())
	}
}

func (c *verdictCache) remove(el *list.Element) {
	e := c.order.Remove(el).(*verdictEntry)
	delete(c.byKey, e.key)
	c.size -= e.size
}
