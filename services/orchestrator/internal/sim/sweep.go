package sim

import (
	"context"
	"slices"
	"sync"
)

// Sweep runs seeds from, from+1, … from+n-1 on workers goroutines and
// returns the failing results in seed order, each shrunk and traced. It
// stops early when ctx ends.
func Sweep(ctx context.Context, from uint64, n, workers int, o Options) []Result {
	seeds := make(chan uint64)
	failed := make(chan uint64)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				if Run(seed, o).Failed() {
					failed <- seed
				}
			}
		}()
	}
	go func() {
		defer close(seeds)
		for i := range n {
			select {
			case seeds <- from + uint64(i):
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(failed)
	}()
	var bad []uint64
	for seed := range failed {
		bad = append(bad, seed)
	}
	slices.Sort(bad)
	out := make([]Result, 0, len(bad))
	traced := o
	traced.Trace = true
	for _, seed := range bad {
		out = append(out, Shrink(seed, traced))
	}
	return out
}
