// Command orchestrator runs drwatch's orchestrator alone against a site's
// NATS server.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/orchestrator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := service.Main(ctx, "orchestrator", os.Args[1:], os.Stderr, orchestrator.Run); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
