// Command mailsink receives the example deployment's mail over SMTP and
// shows it: GET /messages on the HTTP address returns them as JSON.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/drwatch/drwatch/tests/e2e/internal/mailsink"
)

func main() {
	smtpAddr := flag.String("smtp", ":25", "SMTP listen address")
	httpAddr := flag.String("http", ":8025", "HTTP listen address (GET /messages)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *smtpAddr, *httpAddr); err != nil {
		fmt.Fprintln(os.Stderr, "mailsink:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, smtpAddr, httpAddr string) error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	sink := &mailsink.Sink{Log: log, Now: time.Now}
	l, err := net.Listen("tcp", smtpAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(sink.Messages())
	})
	srv := &http.Server{Addr: httpAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	errc := make(chan error, 1)
	go func() { errc <- sink.Serve(ctx, l) }()
	log.Info("mailsink listening", "smtp", smtpAddr, "http", httpAddr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-errc
}
