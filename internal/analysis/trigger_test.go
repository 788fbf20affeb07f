package analysis

import (
	"context"
	"testing"
)

func TestTriggerCoalesces(t *testing.T) {
	tests := []struct {
		name string
		// during is how many requests arrive while the first run is going.
		during int
		want   int
	}{
		{name: "one request, one run", during: 0, want: 1},
		{name: "a request during a run makes one more", during: 1, want: 2},
		{name: "many requests during a run make one more", during: 50, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTrigger()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started, release := make(chan struct{}), make(chan struct{})
			runs := make(chan int, 10)
			n := 0
			done := make(chan struct{})
			go func() {
				defer close(done)
				tr.Run(ctx, func(context.Context) {
					n++
					if n == 1 {
						close(started)
						<-release
					}
					runs <- n
				})
			}()
			tr.Request()
			<-started
			for range tt.during {
				tr.Request()
			}
			close(release)
			for i := 1; i <= tt.want; i++ {
				if got := <-runs; got != i {
					t.Fatalf("run %d reported %d", i, got)
				}
			}
			// A marker request queued after the expected runs must be the
			// next run: had a request been counted twice, the marker would
			// run as run want+2.
			tr.Request()
			if got := <-runs; got != tt.want+1 {
				t.Errorf("the marker request ran as run %d, want %d (extra runs happened)", got, tt.want+1)
			}
			cancel()
			<-done
		})
	}
}

func TestTriggerRunStopsWithContext(t *testing.T) {
	tr := NewTrigger()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr.Request()
	ran := false
	tr.Run(ctx, func(context.Context) { ran = true })
	if ran {
		t.Error("the job ran after the context ended")
	}
}
