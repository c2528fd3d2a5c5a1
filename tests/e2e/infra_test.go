package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/smtp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drwatch/drwatch/tests/e2e/internal/writer"
)

// TestPairInfrastructure proves the ground the scenarios stand on, with no
// drwatch running: both databases replicate a → b across the wan, each
// site logs in to every arbiter with a verified host key and sees its own
// session listed, the VIP moves between the sites and a client writing
// through it follows, a cut isolates exactly what it names, and a power
// off takes a site's address with it.
func TestPairInfrastructure(t *testing.T) {
	p := StartPair(t, PairOptions{})
	a, b := p.Sites["a"], p.Sites["b"]

	t.Run("arbiters list each site's session", func(t *testing.T) {
		for _, s := range []*Site{a, b} {
			for _, arb := range arbiterAddrs {
				out := p.Exec(t, s.Node, "ssh", "-i", "/secrets/"+s.Name+"_ssh_key", "-o", "UserKnownHostsFile=/secrets/known_hosts",
					"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "drwatch@"+arb,
					"ss -tnH state established '( sport = :22 )'")
				if !strings.Contains(out, " "+s.Addrs.wan+":") {
					t.Errorf("arbiter %s listed %q; want a session from site %s (%s)", arb, out, s.Name, s.Addrs.wan)
				}
			}
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.MoveVIP(t, "a")
	w, err := writer.New(writer.Options{
		DSN:   "app:app@tcp(" + vipAddr + ":3306)/app?timeout=1s&readTimeout=2s&writeTimeout=2s",
		Name:  "infra",
		Pause: 10 * time.Millisecond,
		Log:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	t.Run("client writes through the VIP and rows replicate", func(t *testing.T) {
		waitFor(t, time.Minute, "100 rows acknowledged through the VIP", func() (bool, string) {
			st := w.Status()
			return st.Acked >= 100, fmt.Sprintf("%+v", st)
		})
		acked := w.Status().Acked
		waitFor(t, 30*time.Second, "the rows on site b", func() (bool, string) {
			var n int64
			err := DB(t, b.Addrs.wan).QueryRow("SELECT count(*) FROM app.writes WHERE writer='infra'").Scan(&n)
			return err == nil && n >= acked, fmt.Sprintf("%d rows, err %v", n, err)
		})
	})

	t.Run("the VIP moves and the server behind it changes", func(t *testing.T) {
		serverID := func() (string, error) {
			var id string
			err := DB(t, vipAddr).QueryRow("SELECT @@server_id").Scan(&id)
			return id, err
		}
		if id, err := serverID(); err != nil || id != "1" {
			t.Fatalf("through the VIP on site a: server_id %q, %v; want 1", id, err)
		}
		p.MoveVIP(t, "b")
		if got := p.VIPHolders(t); !slices.Equal(got, []string{"b"}) {
			t.Fatalf("VIP holders %v, want [b]", got)
		}
		waitFor(t, 20*time.Second, "the VIP to reach site b's server", func() (bool, string) {
			id, err := serverID()
			return id == "2", fmt.Sprintf("server_id %q, %v", id, err)
		})
		p.MoveVIP(t, "a")
	})

	t.Run("a cut isolates the sites but not the arbiters", func(t *testing.T) {
		reach := func(from *Site, addr string, port int) bool {
			_, err := p.TryExec(from.Node, "timeout", "2", "bash", "-c", fmt.Sprintf("</dev/tcp/%s/%d", addr, port))
			return err == nil
		}
		if !reach(b, a.Addrs.wan, 3306) {
			t.Fatal("before the cut, site b cannot reach site a's MariaDB")
		}
		p.Cut(t, "a", PeerAddrs("a")...)
		if reach(b, a.Addrs.wan, 3306) || reach(b, a.Addrs.lan, 3306) {
			t.Error("after the cut, site b still reaches site a")
		}
		if !reach(a, arbiterAddrs[0], 22) || !reach(b, arbiterAddrs[0], 22) {
			t.Error("the cut between the sites also cut an arbiter")
		}
		p.Heal(t, "a")
		if !reach(b, a.Addrs.wan, 3306) {
			t.Error("after the heal, site b cannot reach site a")
		}
	})

	t.Run("mail sink receives mail", func(t *testing.T) {
		err := smtp.SendMail(mailAddr+":25", nil, "drwatch-a@example.org", []string{"ops@example.org"},
			[]byte("Subject: e2e check\r\n\r\nhello\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		msgs := p.Mails(t)
		if len(msgs) != 1 || msgs[0].Subject != "e2e check" {
			t.Fatalf("mails %+v, want one with subject %q", msgs, "e2e check")
		}
	})

	t.Run("power off takes the site and its VIP away", func(t *testing.T) {
		p.PowerOff(t, "a")
		if got := p.VIPHolders(t); len(got) != 0 {
			t.Errorf("VIP holders after site a's power off: %v, want none", got)
		}
		var one int
		if err := DB(t, b.Addrs.wan).QueryRow("SELECT 1").Scan(&one); err != nil {
			t.Errorf("site b's MariaDB after site a's power off: %v", err)
		}
	})
}
