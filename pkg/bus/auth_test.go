package bus_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
)

func TestUnauthenticatedClientIsRefused(t *testing.T) {
	site := bustest.RunJetStream(t)
	_, err := nats.Connect(site.URL, nats.MaxReconnects(0))
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("connect without credentials: %v, want an authorization violation", err)
	}
	// A well-formed key the server does not know is refused too.
	stranger := filepath.Join(t.TempDir(), "keys")
	if _, err := bus.EnsureKeys(stranger, []string{"heartbeat"}); err != nil {
		t.Fatal(err)
	}
	auth, err := bus.ClientAuth(stranger, "heartbeat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nats.Connect(site.URL, auth, nats.MaxReconnects(0)); err == nil {
		t.Fatal("a key of another site was admitted")
	}
}

func TestKeysAreCreatedPrivateAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	first, err := bus.EnsureKeys(dir, bus.Identities)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range bus.Identities {
		fi, err := os.Stat(bus.KeyFile(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", id, fi.Mode().Perm())
		}
	}
	again, err := bus.EnsureKeys(dir, bus.Identities)
	if err != nil {
		t.Fatal(err)
	}
	for id, pub := range first {
		if again[id] != pub {
			t.Errorf("%s: key changed on the second start", id)
		}
	}
	if err := os.WriteFile(bus.KeyFile(dir, "cli"), []byte("not a seed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = bus.EnsureKeys(dir, bus.Identities)
	if err == nil || !strings.Contains(err.Error(), "not an nkey seed") {
		t.Fatalf("a damaged seed: %v, want an error naming it, never a silent replacement", err)
	}
	if _, err := bus.EnsureKeys("", bus.Identities); err == nil {
		t.Fatal("no keys directory was accepted")
	}
}

// denied connects as identity and reports the permission errors the server
// sends back for each publish.
func publishDenied(t *testing.T, site *bustest.Site, identity, subject string) bool {
	t.Helper()
	errs := make(chan error, 4)
	nc := site.ConnectAs(t, identity, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err := nc.Publish(subject, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject)
	case <-time.After(time.Second):
		return false
	}
}

func TestEachIdentityPublishesOnlyItsSubjects(t *testing.T) {
	site := bustest.RunSite(t, "a", bustest.SiteOptions{Peer: "b"})
	site.Bus(t, "setup", "b") // the streams
	for _, tc := range []struct {
		identity, subject string
	}{
		{"heartbeat", "drwatch.a.evt.orchestrator.RoleChanged"},
		{"heartbeat", "drwatch.a.evt.orchestrator.DatabaseCommand"},
		{"heartbeat", "drwatch.b.evt.heartbeat.RemoteUnreachable"},
		{"cli", "drwatch.a.evt.orchestrator.DatabaseCommand"},
		{"dbmonitor", "drwatch.a.evt.orchestrator.RoleChanged"},
		{"notifier", "drwatch.a.evt.cli.FailoverRequested"},
		{"orchestrator", "drwatch.a.evt.cli.AutomaticFailoverChanged"},
		{"orchestrator", "$JS.API.STREAM.DELETE.EVENTS"},
		{"orchestrator", "$JS.API.STREAM.PURGE.EVENTS"},
		{"orchestrator", "$JS.API.STREAM.UPDATE.EVENTS"},
		{"cli", "$JS.API.STREAM.MSG.DELETE.EVENTS"},
		{"site", "$JS.API.STREAM.DELETE.EVENTS"},
		{"site", "$JS.API.STREAM.PURGE.ROLES"},
		{"notifier", "$JS.API.STREAM.CREATE.KV_other"},
		{"notifier", "$KV.other.key"},
		{"filesync", "$JS.API.STREAM.DELETE.OBJ_drwatch_files"},
	} {
		if !publishDenied(t, site, tc.identity, tc.subject) {
			t.Errorf("%s publishing %s was not refused", tc.identity, tc.subject)
		}
	}
	// Nothing but an inbox is subscribed to: the log is read through
	// consumers, never by listening to the subjects.
	errs := make(chan error, 1)
	nc := site.ConnectAs(t, "heartbeat", nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if _, err := nc.SubscribeSync("drwatch.a.evt.>"); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("subscribe: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("heartbeat subscribing to drwatch.a.evt.> was not refused")
	}
}

func TestIdentitiesDoTheirWork(t *testing.T) {
	ctx := ctxT(t)
	site := bustest.RunSite(t, "a", bustest.SiteOptions{Peer: "b"})
	newBus := func(identity string) *bus.Bus {
		b, err := bus.New(site.ConnectAs(t, identity), bus.Options{Source: events.Source{Site: "a", Node: "n", Service: identity}, Peer: "b"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hb := newBus("heartbeat")
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := hb.EnsureStreams(sctx)
	cancel()
	if err == nil {
		t.Fatal("heartbeat created the site's streams")
	}
	if err := newBus(bus.IdentitySite).EnsureStreams(ctx); err != nil {
		t.Fatalf("site identity: %v", err)
	}
	if _, err := hb.Publish(ctx, events.RemoteUnreachable{Peer: "b", Line: "vip", Since: time.Now(), Failed: []events.ProbeResult{{Target: "peer-vip", Kind: "icmp", Attempts: 1, Error: "timeout"}}}, nil); err != nil {
		t.Fatalf("heartbeat publishing its own event: %v", err)
	}
	orch := newBus("orchestrator")
	var got collector
	consume(t, ctx, orch, bus.ConsumerSpec{Durable: "orch", Handler: got.handle})
	bustest.WaitFor(t, 5*time.Second, "the orchestrator's durable consumer to see the event", func() bool { return got.len() == 1 })
	n := 0
	if _, err := orch.Replay(ctx, 0, nil, func(uint64, *events.Envelope) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("replay as orchestrator: %d events, %v", n, err)
	}
	if _, err := orch.Facts(ctx); err != nil {
		t.Fatalf("facts as orchestrator: %v", err)
	}
}

// TestPeerIsConfined runs a pair and, from a client with every right on
// one site, tries through the leafnode what the peer must not do to the
// other: the link's own permissions refuse it on both sides (site a
// admits b as a leafnode user, site b dials a and denies).
func TestPeerIsConfined(t *testing.T) {
	ctx := ctxT(t)
	p := bustest.RunPair(t)
	ba := p.A.Bus(t, "orchestrator", "b")
	bb := p.B.Bus(t, "orchestrator", "a")
	for _, tc := range []struct {
		name         string
		target       *bus.Bus
		targetSite   *bustest.Site
		attackerSite *bustest.Site
		domain       string
	}{
		{"b attacks a (a listens)", ba, p.A, p.B, "a"},
		{"a attacks b (b dials)", bb, p.B, p.A, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := tc.target.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 1, Reason: "x"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Sourcing still works: the attacker's site holds our event.
			attackerBus := map[string]*bus.Bus{"a": bb, "b": ba}[tc.domain]
			bustest.WaitFor(t, 10*time.Second, "the peer to source the event", func() bool {
				n := 0
				_, _ = attackerBus.Replay(ctx, 0, []string{events.SiteEvents(events.SiteID(tc.domain))}, func(_ uint64, e *events.Envelope) error {
					if e.ID == env.ID {
						n++
					}
					return nil
				})
				return n == 1
			})

			nc := tc.attackerSite.Connect(t)
			api := "$JS." + tc.domain + ".API."
			for _, req := range []string{
				api + "STREAM.DELETE.EVENTS",
				api + "STREAM.PURGE.EVENTS",
				api + "STREAM.DELETE.ROLES",
				api + "STREAM.PURGE.ROLES",
				api + "STREAM.MSG.DELETE.EVENTS",
				api + "STREAM.UPDATE.EVENTS",
				api + "STREAM.CREATE.EVIL",
				api + "STREAM.INFO.POISON",
				api + "CONSUMER.CREATE.POISON.evil.drwatch." + tc.domain + ".poison.>",
				api + "CONSUMER.CREATE.ROLES.evil",
				api + "CONSUMER.DELETE.EVENTS.orch",
				api + "CONSUMER.DURABLE.CREATE.EVENTS.evil",
			} {
				body := []byte("{}")
				if strings.Contains(req, "UPDATE.EVENTS") || strings.Contains(req, "CREATE.EVIL") {
					body = []byte(`{"name":"EVENTS","subjects":["drwatch.` + tc.domain + `.evt.>"],"max_age":1000000000}`)
				}
				if _, err := nc.Request(req, body, 500*time.Millisecond); err == nil {
					t.Errorf("%s was answered", req)
				}
			}
			// A consumer on another stream through the JetStream API.
			peerJS, err := jetstream.NewWithDomain(nc, tc.domain)
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = peerJS.CreateConsumer(cctx, bus.PoisonStream, jetstream.ConsumerConfig{Name: "evil"})
			cancel()
			if err == nil {
				t.Error("a consumer on our POISON stream was created")
			}
			// Writing into our subjects.
			forged := *env
			forged.ID = "forged-" + env.ID
			forged.Payload = []byte(`{"from":"standby","to":"active","epoch":99,"reason":"forged"}`)
			data, _ := forged.Marshal()
			if err := nc.Publish(events.Subject(&forged), data); err != nil {
				t.Fatal(err)
			}
			_ = nc.Flush()
			time.Sleep(500 * time.Millisecond)

			// Everything is still there and nothing was added.
			s, err := tc.target.JetStream().Stream(ctx, bus.EventsStream)
			if err != nil {
				t.Fatalf("our log: %v", err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Config.MaxAge != 90*24*time.Hour {
				t.Errorf("our log's MaxAge became %v", info.Config.MaxAge)
			}
			n := 0
			_, err = tc.target.Replay(ctx, 0, []string{events.SiteEvents(events.SiteID(tc.domain))}, func(_ uint64, e *events.Envelope) error {
				n++
				if e.ID == forged.ID {
					t.Error("the forged event reached our log")
				}
				return nil
			})
			if err != nil || n != 1 {
				t.Errorf("our log holds %d of our events (%v), want the 1 published", n, err)
			}
			if _, err := tc.target.JetStream().Stream(ctx, "EVIL"); !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("stream EVIL: %v, want not found", err)
			}
		})
	}
}

// TestDialingSiteDeniesAHostileHub: the site that dials must not rely on
// the permissions the listening peer announces. Here the peer is a bare
// nats-server that admits the leafnode with no limits; site b's own denies
// still refuse its writes.
func TestDialingSiteDeniesAHostileHub(t *testing.T) {
	ctx := ctxT(t)
	leafAddr := bustest.FreeAddr(t)
	host, port, _ := strings.Cut(leafAddr, ":")
	portN, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	var hub *server.Server
	hub, err = server.NewServer(&server.Options{
		ServerName: "hostile-a", Host: "127.0.0.1", Port: -1, JetStream: true, JetStreamDomain: "a",
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		LeafNode: server.LeafNodeOpts{Host: host, Port: portN},
	})
	if err != nil {
		t.Fatal(err)
	}
	go hub.Start()
	if !hub.ReadyForConnections(10 * time.Second) {
		t.Fatal("hostile hub not ready")
	}
	t.Cleanup(hub.Shutdown)
	b := bustest.RunSite(t, "b", bustest.SiteOptions{LeafRemote: leafAddr, Peer: "a"})
	bustest.WaitFor(t, 10*time.Second, "leafnode link up", func() bool { return b.Server.LeafConnected() > 0 })
	bb := b.Bus(t, "orchestrator", "a")
	if _, err := bb.Publish(ctx, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 1, Reason: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(hub.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, req := range []string{
		"$JS.b.API.STREAM.DELETE.EVENTS",
		"$JS.b.API.STREAM.PURGE.EVENTS",
		"$JS.b.API.STREAM.PURGE.ROLES",
		"$JS.b.API.STREAM.MSG.DELETE.EVENTS",
		"$JS.b.API.STREAM.CREATE.EVIL",
		"$JS.b.API.CONSUMER.CREATE.POISON.evil",
		"$JS.b.API.CONSUMER.CREATE.ROLES.evil",
		"$JS.b.API.CONSUMER.DELETE.EVENTS.dbmonitor-commands",
	} {
		if _, err := nc.Request(req, []byte("{}"), 500*time.Millisecond); err == nil {
			t.Errorf("%s from the hostile hub was answered", req)
		}
	}
	// Reads the dialing site answers still pass: the link works.
	if _, err := nc.Request("$JS.b.API.INFO", nil, 2*time.Second); err != nil {
		t.Errorf("the peer's account info read: %v", err)
	}
	forged := `{"id":"forged","type":"RoleChanged","schemaVersion":1,"site":"b","node":"x","service":"orchestrator","time":"2026-01-01T00:00:00Z","payload":{"from":"active","to":"standby","epoch":9,"reason":"forged"}}`
	if err := nc.Publish("drwatch.b.evt.orchestrator.RoleChanged", []byte(forged)); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	time.Sleep(500 * time.Millisecond)
	s, err := bb.JetStream().Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatalf("our log: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("our log holds %d messages, want the 1 we published", info.State.Msgs)
	}
}

// TestForgedEnvelopesAreParked: an envelope whose site, service or type
// differs from the subject it was stored under is parked by a consumer and
// skipped by a replay, whatever it claims.
func TestForgedEnvelopesAreParked(t *testing.T) {
	ctx := ctxT(t)
	site := bustest.RunSite(t, "a", bustest.SiteOptions{Peer: "b"})
	b := site.Bus(t, "orchestrator", "b")
	nc := site.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	peerEnv, err := events.New(events.Source{Site: "b", Node: "b-node", Service: "orchestrator"},
		events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 7, Reason: "forged"}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wrongService := *peerEnv
	wrongService.ID, wrongService.Site = "svc-"+peerEnv.ID, "a"
	wrongType := wrongService
	wrongType.ID, wrongType.Service = "type-"+peerEnv.ID, "orchestrator"
	for _, tc := range []struct {
		env     *events.Envelope
		subject string
		reason  string
	}{
		{peerEnv, "drwatch.a.evt.orchestrator.RoleChanged", `claims site "b"`},
		{&wrongService, "drwatch.a.evt.heartbeat.RoleChanged", `claims service "orchestrator"`},
		{&wrongType, "drwatch.a.evt.orchestrator.RemoteUnreachable", `claims type "RoleChanged"`},
	} {
		data, _ := tc.env.Marshal()
		if _, err := js.Publish(ctx, tc.subject, data); err != nil {
			t.Fatal(err)
		}
	}
	var got collector
	consume(t, ctx, b, bus.ConsumerSpec{Durable: "proj", Handler: got.handle})
	poison, err := b.JetStream().Stream(ctx, bus.PoisonStream)
	if err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 10*time.Second, "three parked envelopes", func() bool {
		info, err := poison.Info(ctx)
		return err == nil && info.State.Msgs == 3
	})
	for i, want := range []string{`claims site "b"`, `claims service "orchestrator"`, `claims type "RoleChanged"`} {
		m, err := poison.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if r := m.Header.Get(bus.HeaderPoisonReason); !strings.Contains(r, want) {
			t.Errorf("parked %d: reason %q, want it to say %s", i+1, r, want)
		}
	}
	if got.len() != 0 {
		t.Errorf("the handler saw %d forged envelopes", got.len())
	}
	n := 0
	if _, err := b.Replay(ctx, 0, nil, func(uint64, *events.Envelope) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("replay delivered %d forged envelopes (%v)", n, err)
	}
}
