// Command drsim runs the pair simulator (internal/sim) over a range of
// seeds in parallel, prints the rate and every failing seed with its
// shrunk trace, and exits non-zero on a violation.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"time"

	"github.com/drwatch/drwatch/services/orchestrator/internal/sim"
)

func main() {
	seeds := flag.Int("seeds", 10000, "how many seeds to run")
	from := flag.Uint64("from", 0, "first seed")
	workers := flag.Int("workers", runtime.NumCPU(), "parallel runs")
	strictFence := flag.Bool("strict-fence", false, "count a writable database nobody can fence (process down or held, no VIP) as a second primary")
	longPauses := flag.Bool("long-pauses", false, "draw process pauses past the arbiters' session timeout")
	syncAlways := flag.Bool("sync-always", false, "every log write synced (the embedded server's default): no unsynced tail to lose")
	bootReadOnly := flag.Bool("boot-read-only", false, "databases boot read-only after a power cut")
	trace := flag.Uint64("trace", 0, "print the whole trace of this one seed (with -from ignored) and exit")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	o := sim.Options{StrictFence: *strictFence, LongPauses: *longPauses, BootReadOnly: *bootReadOnly, SyncAlways: *syncAlways}
	if *trace != 0 {
		o.Trace = true
		r := sim.Run(*trace, o)
		fmt.Print(r.Trace)
		fmt.Printf("seed %d: violation %q, faults %v\n", r.Seed, r.Violation, r.Faults)
		if r.Failed() {
			os.Exit(1)
		}
		return
	}
	fmt.Printf("liveness bound after the last heal: %s\n", sim.DefaultTimers().Bound)
	start := time.Now()
	bad := sim.Sweep(ctx, *from, *seeds, *workers, o)
	took := time.Since(start)
	for _, r := range bad {
		fmt.Printf("\nseed %d FAILED: %s\nshrunk faults:\n", r.Seed, r.Violation)
		for _, f := range r.Faults {
			fmt.Printf("  %s\n", f)
		}
		fmt.Print(r.Trace)
	}
	fmt.Printf("\n%d seeds from %d in %s on %d workers: %.0f seeds/minute, %d failing\n",
		*seeds, *from, took.Round(time.Millisecond), *workers, float64(*seeds)/took.Minutes(), len(bad))
	if len(bad) > 0 {
		os.Exit(1)
	}
}
