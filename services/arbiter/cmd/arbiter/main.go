// Command arbiter runs drwatch's arbiter service alone against a site's NATS.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/arbiter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := service.Main(ctx, "arbiter", os.Args[1:], os.Stderr, arbiter.Run); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
