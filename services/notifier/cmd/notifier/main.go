// Command notifier runs drwatch's notifier alone against a site's NATS.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/notifier"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := service.Main(ctx, "notifier", os.Args[1:], os.Stderr, notifier.Run); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
