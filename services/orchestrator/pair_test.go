package orchestrator

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/orchestrator/internal/decide"
	"github.com/drwatch/drwatch/services/orchestrator/internal/saga"
)

// runPairSites runs both sites' orchestrators on p — a configured active,
// b standby — with the options the pair tests share, adjusted per site by
// tune, until the test ends. It returns each site's orchestrator bus.
func runPairSites(t *testing.T, p *bustest.Pair, tune func(o *Options)) map[events.SiteID]*bus.Bus {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var done []chan error
	t.Cleanup(func() {
		cancel()
		for _, d := range done {
			<-d
		}
	})
	buses := map[events.SiteID]*bus.Bus{}
	for _, s := range []struct {
		site *bustest.Site
		peer events.SiteID
		role events.Role
	}{{p.A, "b", events.RoleActive}, {p.B, "a", events.RoleStandby}} {
		b := s.site.Bus(t, "orchestrator", s.peer)
		buses[s.site.Name] = b
		o := DefaultOptions()
		o.Site, o.Peer, o.InitialRole = s.site.Name, s.peer, s.role
		o.Lines = []string{"default"}
		o.Policy = decide.Policy{Automatic: true, BlockWindow: 8 * time.Hour, MaxLagBytes: 1 << 20}
		o.Hooks = saga.Hooks{Timeout: 5 * time.Second}
		o.Tick = 20 * time.Millisecond
		o.FenceTimeout = 20 * time.Second
		if tune != nil {
			tune(&o)
		}
		d := make(chan error, 1)
		done = append(done, d)
		go func() { d <- RunWith(ctx, service.Deps{Bus: b, Log: quiet(), Now: time.Now}, o) }()
	}
	return buses
}

// maxEpoch is the highest epoch in b's log, as an operator's request
// carries it (drwatch manualFailover).
func maxEpoch(t testing.TB, b *bus.Bus) events.Epoch {
	t.Helper()
	var e events.Epoch
	_, err := b.Replay(context.Background(), 0, []string{events.TypeFilter("RoleChanged"), events.TypeFilter("FailoverStarted")}, func(_ uint64, env *events.Envelope) error {
		switch ev, _ := events.Decode(env); ev := ev.(type) {
		case events.RoleChanged:
			e = max(e, ev.Epoch)
		case events.FailoverStarted:
			e = max(e, ev.Epoch)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func roleOf(t *testing.T, b *bus.Bus, site events.SiteID) (events.Role, events.Epoch) {
	t.Helper()
	var role events.Role
	var epoch events.Epoch
	_, err := b.Replay(context.Background(), 0, []string{events.SiteTypeFilter(site, "RoleChanged")}, func(_ uint64, env *events.Envelope) error {
		rc, err := events.DecodeInto[events.RoleChanged](env)
		role, epoch = rc.To, rc.Epoch
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return role, epoch
}

// TestManualFailoverAcrossSites runs both sites' orchestrators on real
// JetStream sites joined by a leafnode link. An operator on the active
// site asks the standby to take over: the standby fences the active (which
// runs its own m2s saga), waits for its standby announcement across the
// link, then promotes itself at a higher epoch.
func TestManualFailoverAcrossSites(t *testing.T) {
	p := bustest.RunPair(t)
	ctx := t.Context()
	vips := map[events.SiteID]*fakeVIP{"a": {}, "b": {}}
	buses := runPairSites(t, p, func(o *Options) { o.VIP = vips[o.Site] })
	bustest.WaitFor(t, 15*time.Second, "b learns that a is active and a holds the VIP", func() bool {
		r, _ := roleOf(t, buses["b"], "a")
		return r == events.RoleActive && vips["a"].holds()
	})
	op := p.A.Bus(t, "operator", "b")
	if _, err := op.Publish(ctx, events.FailoverRequested{Target: "b", ToRole: events.RoleActive, Manual: true, Reason: "planned switch", RequestedBy: "root@a", Epoch: maxEpoch(t, op)}, nil); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 30*time.Second, "b active", func() bool {
		r, _ := roleOf(t, buses["b"], "b")
		return r == events.RoleActive
	})
	if r, _ := roleOf(t, buses["a"], "a"); r != events.RoleStandby {
		t.Errorf("a is %s after b took over", r)
	}
	if _, e := roleOf(t, buses["b"], "b"); e != 2 {
		t.Errorf("b active at epoch %d, want 2", e)
	}
	// a took the VIP when it started active (the VIP monitor), and its
	// fencing saga released it.
	if got := vips["a"].opsSeen(); !cmp.Equal(got, []string{"take", "release"}) || vips["a"].holds() || !vips["b"].holds() {
		t.Errorf("VIP: a ops=%v held=%v, b held=%v", got, vips["a"].holds(), vips["b"].holds())
	}
}

// fakeDBMonitor answers every DatabaseCommand aimed at site on b, as the
// real dbmonitor does, and hands the commands it saw to seen.
func fakeDBMonitor(ctx context.Context, t *testing.T, b *bus.Bus, site events.SiteID, seen chan<- events.DatabaseCommand) {
	answerDBCommands(ctx, b, site, seen, nil)
}

// answerDBCommands answers site's DatabaseCommands on b like dbmonitor:
// each succeeds, a position answer carrying the lag lag returns for the
// command's FailoverID (none when lag is nil); the commands go to seen
// when it has room (seen may be nil).
func answerDBCommands(ctx context.Context, b *bus.Bus, site events.SiteID, seen chan<- events.DatabaseCommand, lag func(failoverID string) int64) {
	go func() {
		answered := map[events.ID]bool{}
		for ctx.Err() == nil {
			_, _ = b.Replay(ctx, 0, []string{events.TypeFilter("DatabaseCommand")}, func(_ uint64, env *events.Envelope) error {
				cmd, err := events.DecodeInto[events.DatabaseCommand](env)
				if err != nil || cmd.Target != site || answered[env.ID] {
					return nil
				}
				answered[env.ID] = true
				select {
				case seen <- cmd:
				default:
				}
				done := events.DatabaseCommandDone{Command: cmd.Command, Database: cmd.Database, OK: true, Position: "0-1-1", FailoverID: cmd.FailoverID}
				if cmd.Command == "position" && lag != nil {
					done.LagTransactions = lag(cmd.FailoverID)
				}
				_, err = b.Publish(ctx, done, env)
				return err
			})
			time.Sleep(20 * time.Millisecond)
		}
	}()
}

// TestFormerActiveFollowsTheNewActive: after a switchover the former
// active site stands by, and its database — a fenced primary that follows
// nobody — must replicate from the new active: the orchestrator asks its
// dbmonitor to re-point it at the peer's server, once. (The end-to-end
// suite's scenario 6 found site a's MariaDB left without a primary.) The
// site that was never active is not re-pointed at start.
func TestFormerActiveFollowsTheNewActive(t *testing.T) {
	p := bustest.RunPair(t)
	ctx := t.Context()
	seen := map[events.SiteID]chan events.DatabaseCommand{}
	for _, s := range []*bustest.Site{p.A, p.B} {
		seen[s.Name] = make(chan events.DatabaseCommand, 16)
		fakeDBMonitor(ctx, t, s.Bus(t, "dbmonitor", map[events.SiteID]events.SiteID{"a": "b", "b": "a"}[s.Name]), s.Name, seen[s.Name])
	}
	buses := runPairSites(t, p, func(o *Options) {
		o.Databases = []events.Database{events.MySQL}
		peerDB := map[events.SiteID]string{"a": "10.0.0.2", "b": "10.0.0.1"}[o.Site]
		o.PeerDatabases = map[events.Database]HostPort{events.MySQL: {Host: peerDB, Port: 3306}}
	})
	bustest.WaitFor(t, 15*time.Second, "b learns that a is active", func() bool {
		r, _ := roleOf(t, buses["b"], "a")
		return r == events.RoleActive
	})
	time.Sleep(300 * time.Millisecond) // rounds in which b must not re-point
	op := p.B.Bus(t, "operator", "a")
	if _, err := op.Publish(ctx, events.FailoverRequested{Target: "b", ToRole: events.RoleActive, Manual: true, Reason: "planned switch", RequestedBy: "root@b", Epoch: maxEpoch(t, op)}, nil); err != nil {
		t.Fatal(err)
	}
	var got []events.DatabaseCommand
	bustest.WaitFor(t, 30*time.Second, "a re-points its database at b", func() bool {
		for {
			select {
			case c := <-seen["a"]:
				got = append(got, c)
				continue
			default:
			}
			break
		}
		return len(got) > 0 && got[len(got)-1].Command == "repoint"
	})
	time.Sleep(300 * time.Millisecond) // rounds in which a must not re-point again
	for {
		select {
		case c := <-seen["a"]:
			got = append(got, c)
			continue
		default:
		}
		break
	}
	var cmds []string
	for _, c := range got {
		cmds = append(cmds, c.Command)
	}
	if diff := cmp.Diff([]string{"demote", "repoint"}, cmds); diff != "" {
		t.Errorf("site a's database commands (-want +got):\n%s", diff)
	}
	last := got[len(got)-1]
	if last.PrimaryHost != "10.0.0.2" || last.PrimaryPort != 3306 || last.FailoverID != "follow@2" || last.FollowEpoch != 2 {
		t.Errorf("repoint %+v, want primary 10.0.0.2:3306 for b's epoch 2", last)
	}
	for {
		select {
		case c := <-seen["b"]:
			if c.Command == "repoint" {
				t.Errorf("b, never active before, was re-pointed: %+v", c)
			}
			continue
		default:
		}
		break
	}
}

func TestPeerDatabasePorts(t *testing.T) {
	for _, tt := range []struct {
		dsn  string
		my   bool
		want int
	}{
		{"drwatch:drwatch@tcp(127.0.0.1:3306)/", true, 3306},
		{"u:p@tcp(db:3307)/x?tls=true", true, 3307},
		{"u:p@unix(/run/mysqld.sock)/", true, 3306},
		{"postgres://drwatch:drwatch@127.0.0.1:5433/postgres?sslmode=disable", false, 5433},
		{"postgres://drwatch@127.0.0.1/postgres", false, 5432},
		{"host=127.0.0.1 port=6432 user=drwatch", false, 6432},
		{"host=127.0.0.1 user=drwatch", false, 5432},
	} {
		got := pgsqlPort(tt.dsn)
		if tt.my {
			got = mysqlPort(tt.dsn)
		}
		if got != tt.want {
			t.Errorf("port of %q = %d, want %d", tt.dsn, got, tt.want)
		}
	}
}

// TestRestartedActiveWaitsForThePeersRole: site a was active at epoch 1
// and went down; b took over at epoch 2. When a comes back its log still
// says active, and b's RoleChanged reaches it only once the link is up
// and the source caught up. a must not take the VIP meanwhile (the
// end-to-end suite's scenario 6 saw both sites hold it for half a
// second): it stands down without ever taking it.
func TestRestartedActiveWaitsForThePeersRole(t *testing.T) {
	p := bustest.RunPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	aBus := p.A.Bus(t, "orchestrator", "b")
	bBus := p.B.Bus(t, "orchestrator", "a")
	if _, err := aBus.Publish(ctx, events.RoleChanged{From: events.RoleActive, To: events.RoleActive, Epoch: 1, Reason: "initial"}, nil); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 15*time.Second, "b has a's role", func() bool {
		r, _ := roleOf(t, bBus, "a")
		return r == events.RoleActive
	})
	p.Link.Cut()
	for _, rc := range []events.RoleChanged{
		{From: events.RoleStandby, To: events.RoleStandby, Epoch: 0, Reason: "initial"},
		{From: events.RoleStandby, To: events.RoleActive, Epoch: 2, Reason: "a lost", FailoverID: "f1"},
	} {
		if _, err := bBus.Publish(ctx, rc, nil); err != nil {
			t.Fatal(err)
		}
	}
	vip := &fakeVIP{}
	o := DefaultOptions()
	o.Site, o.Peer, o.InitialRole = "a", "b", events.RoleActive
	o.Lines = []string{"default"}
	o.Policy = decide.Policy{Automatic: true, BlockWindow: 8 * time.Hour, MaxLagBytes: 1 << 20, Home: true}
	o.Hooks = saga.Hooks{Timeout: 5 * time.Second}
	o.VIP = vip
	o.Tick = 20 * time.Millisecond
	o.VIPInterval = 20 * time.Millisecond
	o.KeepPeerSource = true // a healed link is used at once
	done := make(chan error, 1)
	go func() { done <- RunWith(ctx, service.Deps{Bus: aBus, Log: quiet(), Now: time.Now}, o) }()
	defer func() { cancel(); <-done }()
	time.Sleep(500 * time.Millisecond) // many VIP rounds while b's role is unknown here
	if got := vip.opsSeen(); len(got) != 0 {
		t.Fatalf("a moved the VIP (%v) before it knew b's role", got)
	}
	p.Link.Heal()
	bustest.WaitFor(t, 30*time.Second, "a standby", func() bool {
		r, _ := roleOf(t, aBus, "a")
		return r == events.RoleStandby
	})
	time.Sleep(200 * time.Millisecond)
	for _, op := range vip.opsSeen() {
		if op == "take" {
			t.Errorf("a took the VIP while b was active at a higher epoch: %v", vip.opsSeen())
		}
	}
}
