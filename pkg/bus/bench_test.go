package bus_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
)

// Run: go test ./pkg/bus -run '^$' -bench . -benchtime 3000x
//
// The figures are reported as custom metrics: p50/p99 publish→consume
// latency in microseconds and events/s through a durable consumer, with the
// log's fsync lazy (nats-server default) and always (drwatch's default).

func BenchmarkPublishConsume(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := "fsync=lazy"
		if sync {
			name = "fsync=always"
		}
		b.Run(name, func(b *testing.B) {
			site := bustest.RunSite(b, "a", bustest.SiteOptions{SyncAlways: sync})
			bb := site.Bus(b, "bench", "")
			benchPublishConsume(b, bb)
		})
	}
}

func benchPublishConsume(b *testing.B, bb *bus.Bus) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	done := make(chan struct{})
	handler := func(_ context.Context, env *events.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		lat = append(lat, time.Since(env.Time))
		if len(lat) == b.N {
			close(done)
		}
		return nil
	}
	go func() {
		_ = bb.Consume(ctx, bus.ConsumerSpec{Durable: "bench", Handler: handler, DeliverNew: true, MaxAckPending: 1})
	}()
	time.Sleep(200 * time.Millisecond)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := bb.Publish(ctx, events.ConfigChecked{OK: true}, nil); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("only %d of %d consumed", len(lat), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// BenchmarkRawJetStreamPublish is the floor drwatch's bus is compared with:
// synchronous JetStream publishes of a payload of the same size, no
// envelope, no validation.
func BenchmarkRawJetStreamPublish(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := "fsync=lazy"
		if sync {
			name = "fsync=always"
		}
		b.Run(name, func(b *testing.B) {
			site := bustest.RunSite(b, "a", bustest.SiteOptions{SyncAlways: sync})
			bb := site.Bus(b, "bench", "")
			env, err := events.New(bb.Source(), events.ConfigChecked{OK: true}, time.Now(), nil)
			if err != nil {
				b.Fatal(err)
			}
			data, _ := env.Marshal()
			js := bb.JetStream()
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := js.Publish(ctx, events.Subject(env), data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkCatchUpAfterHeal measures how long after a link heal site b's
// copy of a's log holds everything a published while the link was down
// (b.N events, 6 s cut), with and without the source keeper.
func BenchmarkCatchUpAfterHeal(b *testing.B) {
	for _, keep := range []bool{true, false} {
		name := "keeper=on"
		if !keep {
			name = "keeper=off"
		}
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pair := bustest.RunPair(b)
			ba := pair.A.Bus(b, "bench", "b")
			bb := pair.B.Bus(b, "bench", "a")
			if keep {
				go func() { _ = bb.KeepPeerSource(ctx, bus.SourceKeeperOptions{}) }()
			}
			count := func() uint64 { return siteEventCount(ctx, bb, "a") }
			pair.Link.Cut()
			for i := 0; i < b.N; i++ {
				if _, err := ba.Publish(ctx, events.ConfigChecked{OK: true}, nil); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(6 * time.Second)
			b.ResetTimer()
			pair.Link.Heal()
			healed := time.Now()
			deadline := healed.Add(3 * time.Minute)
			for count() < uint64(b.N) {
				if time.Now().After(deadline) {
					b.Fatalf("not caught up 3 min after the heal")
				}
				time.Sleep(10 * time.Millisecond)
			}
			b.ReportMetric(time.Since(healed).Seconds()*1000, "catchup-ms")
		})
	}
}
