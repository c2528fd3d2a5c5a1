// Command drchaos runs drwatch's real-process chaos harness (see
// tests/chaos/README.md): `drchaos -runs N -duration 60s -seed S`. Run
// as root. `drchaos client` is the helper it runs in the client namespace.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/drwatch/drwatch/tests/chaos/internal/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "drchaos:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "client" {
		return chaos.Client(ctx, args[1:])
	}
	o := chaos.DefaultOptions()
	fs := flag.NewFlagSet("drchaos", flag.ContinueOnError)
	fs.IntVar(&o.Runs, "runs", o.Runs, "runs, seeds -seed, -seed+1, …")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "faults are drawn within this long per run")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "first seed")
	fs.DurationVar(&o.MaxHold, "max-hold", o.MaxHold, "longest a fault is held (3 s up to this)")
	fs.DurationVar(&o.Liveness, "liveness", o.Liveness, "bound after the final heal for exactly one active")
	fs.StringVar(&o.Work, "work", o.Work, "directory for runs (a failing run's directory is kept)")
	fs.BoolVar(&o.Keep, "keep", o.Keep, "keep every run's directory")
	repo := fs.String("repo", "", "repository to build drwatch from (default: the git top level of the working directory)")
	faults := fs.String("faults", "", "comma-separated fault kinds (default all: "+strings.Join(chaos.Kinds, ",")+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if *faults != "" {
		if o.Kinds, err = chaos.ParseKinds(strings.Split(*faults, ",")); err != nil {
			return err
		}
	}
	o.Repo = *repo
	if o.Repo == "" {
		out, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
		if err != nil {
			return fmt.Errorf("-repo not given and not in a git checkout: %w", err)
		}
		o.Repo = strings.TrimSpace(string(out))
	}
	results, err := chaos.Run(ctx, o)
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Failed() {
			return fmt.Errorf("%d of %d runs failed", countFailed(results), len(results))
		}
	}
	return nil
}

func countFailed(rs []chaos.Result) int {
	n := 0
	for _, r := range rs {
		if r.Failed() {
			n++
		}
	}
	return n
}
