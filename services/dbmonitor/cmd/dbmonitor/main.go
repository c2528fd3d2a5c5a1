// Command dbmonitor runs the database replication monitor alone.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/dbmonitor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := service.Main(ctx, "dbmonitor", os.Args[1:], os.Stderr, dbmonitor.Run); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
