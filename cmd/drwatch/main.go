// Command drwatch runs a whole drwatch site in one process and is the
// operator's command line.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
