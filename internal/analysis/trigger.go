package analysis

import "context"

// Trigger runs a job in one goroutine on request, coalescing requests: any
// number of requests made while the job runs make exactly one more run
// after it, and requests never block.
type Trigger struct {
	c chan struct{}
}

// NewTrigger returns a trigger with no request pending.
func NewTrigger() *Trigger {
	return &Trigger{c: make(chan struct{}, 1)}
}

// Request asks for one more run of the job; it returns at once.
func (t *Trigger) Request() {
	select {
	case t.c <- struct{}{}:
	default: // a run is already pending: this request joins it
	}
}

// Run runs job once per pending request until ctx ends. The job gets ctx
// and should stop soon after ctx ends; Run returns once it has.
func (t *Trigger) Run(ctx context.Context, job func(context.Context)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.c:
			if ctx.Err() != nil {
				return
			}
			job(ctx)
		}
	}
}
