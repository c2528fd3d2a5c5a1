package probe_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/services/arbiter/internal/probe"
	"github.com/drwatch/drwatch/services/arbiter/internal/sshtest"
	"github.com/drwatch/drwatch/services/arbiter/internal/verdict"
)

const benchArbiters = 1000

var benchThresholds = verdict.Thresholds{Failover: 0.5, AdjustManaged: 0.5, Warning: 0.7}

// BenchmarkVerdictTCP1000 is the pings of the active site's round against
// 1 000 arbiters, each a loopback TCP listener: probe all, then decide
// (as if every arbiter listed the site; the lists, checked beside the
// pings, are BenchmarkVerify's).
// go test ./internal/probe -run '^$' -bench Verdict -benchtime 10x
func BenchmarkVerdictTCP1000(b *testing.B) {
	ports := make([]int, benchArbiters)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatalf("listener %d: %v (raise ulimit -n)", i, err)
		}
		b.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		res := probe.All(ctx, benchArbiters, 5*time.Second, func(ctx context.Context, i int) probe.Result {
			return probe.TCP(ctx, "127.0.0.1", ports[i])
		})
		in := verdict.Input{Role: events.RoleActive, N: benchArbiters, Automatic: true, Thresholds: benchThresholds}
		for _, r := range res {
			if r.Reachable {
				in.Reachable++
			}
		}
		in.Managed = in.Reachable
		if v := verdict.Decide(in); v.Branch != verdict.BranchActiveQuorum || in.Reachable != benchArbiters {
			b.Fatalf("verdict %s with %d reachable", v.Branch, in.Reachable)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/verdict")
}

// BenchmarkVerdictSSH1000 is the standby site's round: log in to 1 000
// arbiters (20 in-process SSH servers, 50 arbiter entries each), run who,
// count the sessions from site a, decide.
func BenchmarkVerdictSSH1000(b *testing.B) {
	const servers = 20
	var targets []*probe.SSHTarget
	for s := range servers {
		srv := sshtest.New(b, sshtest.Options{Password: "s3cret"})
		if s%2 == 0 {
			srv.SetExtra("space pts/1 2025-03-01 11:00 (127.0.0.2)")
		}
		kh := sshtest.KnownHosts(b, nil, srv)
		t, err := probe.NewSSHTarget(probe.SSHTargetOptions{Host: srv.Host, Port: srv.Port, Username: "arbiter", Password: "s3cret", KnownHosts: kh, Field: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		for range benchArbiters / servers {
			targets = append(targets, t)
		}
	}
	peers, _ := probe.ParsePeerSet([]string{"127.0.0.2"})
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		res := probe.All(ctx, len(targets), 30*time.Second, func(ctx context.Context, i int) probe.Result {
			return probe.Dialer{}.Check(ctx, targets[i], "who", peers)
		})
		in := verdict.Input{Role: events.RoleStandby, N: len(targets), Automatic: true, Thresholds: benchThresholds}
		for _, r := range res {
			switch {
			case !r.Reachable:
				in.Unreachable++
			case r.Managed:
				in.Managed++
			}
		}
		if v := verdict.Decide(in); v.Branch != verdict.BranchStandbyManaged || in.Unreachable != 0 {
			b.Fatalf("verdict %s: managed %d unreachable %d (%v)", v.Branch, in.Managed, in.Unreachable, res[0].Err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/verdict")
}

// BenchmarkVerdictICMP1000 pings 1 000 loopback addresses (127.0.1.0 up)
// over the one shared ICMP socket.
func BenchmarkVerdictICMP1000(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := probe.NewPinger(ctx)
	if err != nil {
		b.Skipf("no ICMP socket: %v", err)
	}
	hosts := make([]string, benchArbiters)
	for i := range hosts {
		hosts[i] = net.IPv4(127, 0, byte(1+i/250), byte(1+i%250)).String()
	}
	b.ResetTimer()
	for b.Loop() {
		res := probe.All(ctx, benchArbiters, 5*time.Second, func(ctx context.Context, i int) probe.Result {
			return p.Ping(ctx, hosts[i])
		})
		in := verdict.Input{Role: events.RoleActive, N: benchArbiters, Automatic: true, Thresholds: benchThresholds}
		for _, r := range res {
			if r.Reachable {
				in.Reachable++
			}
		}
		if in.Reachable != benchArbiters {
			b.Fatalf("%d of %d loopback pings answered", in.Reachable, benchArbiters)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/verdict")
}

// BenchmarkVerify is the active site's check of its managing sessions: run
// who over each held session (20 in-process SSH servers share the
// arbiters) and count those listing this site, as every round does while
// the sessions are held.
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{3, benchArbiters} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			servers := min(n, 20)
			var targets []*probe.SSHTarget
			for range servers {
				srv := sshtest.New(b, sshtest.Options{Password: "s3cret"})
				kh := sshtest.KnownHosts(b, nil, srv)
				for range n / servers {
					t, err := probe.NewSSHTarget(probe.SSHTargetOptions{Host: srv.Host, Port: srv.Port, Username: "arbiter", Password: "s3cret", KnownHosts: kh, Field: "bench"})
					if err != nil {
						b.Fatal(err)
					}
					targets = append(targets, t)
				}
			}
			h := &probe.Holder{Targets: targets, Timeout: 30 * time.Second, Keepalive: time.Minute, Log: slog.New(slog.DiscardHandler)}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { h.Run(ctx); close(done) }()
			b.Cleanup(func() { cancel(); <-done })
			<-h.Ready()
			if h.Connected() != len(targets) {
				b.Fatalf("%d of %d sessions held", h.Connected(), len(targets))
			}
			b.ResetTimer()
			for b.Loop() {
				res := probe.All(ctx, len(targets), 30*time.Second, func(ctx context.Context, i int) probe.Result {
					return h.Verify(ctx, targets[i], "who", nil)
				})
				for _, r := range res {
					if !r.Managed {
						b.Fatalf("not listed: %v", r.Err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/round")
		})
	}
}
