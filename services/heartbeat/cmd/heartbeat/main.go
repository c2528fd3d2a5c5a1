// Command heartbeat runs drwatch's heartbeat service alone against a site's
// NATS server.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/heartbeat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := service.Main(ctx, "heartbeat", os.Args[1:], os.Stderr, heartbeat.Run); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
