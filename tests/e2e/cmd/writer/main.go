// Command writer inserts numbered rows into MariaDB through the VIP and
// serves what it saw at GET /status (JSON): the highest acknowledged row,
// failures, the longest outage.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/drwatch/drwatch/tests/e2e/internal/writer"
)

func main() {
	dsn := flag.String("dsn", "app:app@tcp(172.30.0.100:3306)/app?timeout=2s&readTimeout=3s&writeTimeout=3s", "MariaDB through the VIP")
	name := flag.String("name", "writer", "writer name stored in each row")
	pause := flag.Duration("pause", 20*time.Millisecond, "pause between inserts")
	httpAddr := flag.String("http", ":8080", "status address (GET /status)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	w, err := writer.New(writer.Options{DSN: *dsn, Name: *name, Pause: *pause, Log: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		json.NewEncoder(rw).Encode(w.Status())
	})
	srv := &http.Server{Addr: *httpAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.ListenAndServe()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	w.Run(ctx)
}
