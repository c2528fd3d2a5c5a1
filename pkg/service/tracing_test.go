package service

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
)

// collector is an OTLP/gRPC trace receiver that records what it is sent.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string][]string // span name -> trace ids (hex)
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans[s.Name] = append(c.spans[s.Name], string(s.TraceId))
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestTracesExportedOverOTLPWhenConfigured sends one event through the bus
// with tracing pointed at a real OTLP/gRPC receiver and checks that the
// publish and handle spans arrive there, in one trace.
func TestTracesExportedOverOTLPWhenConfigured(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &collector{spans: map[string][]string{}}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, rec)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	tp, shutdown, err := Tracing(ctx, config.Telemetry{OTLPEndpoint: ln.Addr().String(), Insecure: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	site := bustest.RunJetStream(t)
	cfg := config.Defaults()
	cfg.Site.Name, cfg.Site.Peer, cfg.Site.Node = "a", "b", "n1"
	cfg.NATS.Embedded.KeysDir = site.KeysDir
	site.Bus(t, "site", "") // the site process makes the streams
	b, err := Connect(ctx, &cfg, site.URL, "heartbeat", slog.New(slog.DiscardHandler), bus.NewMetrics(nil), tp)
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{})
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(cctx, bus.ConsumerSpec{Durable: "traced", Handler: func(context.Context, *events.Envelope) error {
			close(handled)
			return nil
		}})
	}()
	if _, err := b.Publish(ctx, events.ConfigChecked{OK: true}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-handled:
	case <-ctx.Done():
		t.Fatal("event not handled")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	shutdown() // flushes the batch to the receiver

	rec.mu.Lock()
	defer rec.mu.Unlock()
	pub, sub := rec.spans["publish ConfigChecked"], rec.spans["handle ConfigChecked"]
	if len(pub) != 1 || len(sub) != 1 {
		t.Fatalf("receiver got %v, want one publish and one handle span", rec.spans)
	}
	if pub[0] != sub[0] {
		t.Errorf("publish and handle spans are in different traces")
	}
}

func TestNoTracingWithoutEndpoint(t *testing.T) {
	tp, shutdown, err := Tracing(context.Background(), config.Telemetry{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown()
	_, span := tp.Tracer("x").Start(context.Background(), "x")
	if span.SpanContext().IsValid() {
		t.Error("a span was recorded with no endpoint configured")
	}
}
