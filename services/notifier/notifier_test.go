package notifier_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/bus/bustest"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
	"github.com/drwatch/drwatch/services/notifier"
	"github.com/drwatch/drwatch/services/notifier/internal/mail"
	"github.com/drwatch/drwatch/services/notifier/internal/smtptest"
)

// clock is a virtual clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var recipients = []string{"ops@example.com", "dba@example.com"}

func options(srv *smtptest.Server) notifier.Options {
	o := notifier.DefaultOptions()
	o.SMTP = mail.Config{Host: "127.0.0.1", Port: srv.Port(), Security: mail.STARTTLS, Username: "drwatch", Password: "s3cret", RootCAs: srv.CertPool(), Timeout: 2 * time.Second}
	o.From = "drwatch@a.example"
	o.To = recipients
	o.RetryBackOff = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	o.AckWait = 5 * time.Second
	o.ClaimTTL = time.Minute
	return o
}

// start runs a notifier replica until the returned stop is called.
func start(t *testing.T, site *bustest.Site, clk *clock, opts notifier.Options) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	deps := service.Deps{Bus: site.Bus(t, "notifier", ""), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.Now}
	done := make(chan error, 1)
	go func() { done <- notifier.RunOptions(ctx, deps, opts) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("notifier: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// count returns how many events of type ty the site's log holds.
func count(t testing.TB, js jetstream.JetStream, ty events.Type) int {
	t.Helper()
	s, err := js.Stream(context.Background(), bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(events.TypeFilter(ty)))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

func publish(t testing.TB, b *bus.Bus, ev events.Event) *events.Envelope {
	t.Helper()
	env, err := b.Publish(context.Background(), ev, nil)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestMailsDedupeAcrossRestartAndRecovery(t *testing.T) {
	site := bustest.RunJetStream(t)
	srv := smtptest.Start(t, smtptest.Options{Username: "drwatch", Password: "s3cret"})
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	dbm := site.Bus(t, "dbmonitor", "")
	js := dbm.JetStream()
	stop := start(t, site, clk, options(srv))

	broken := events.ReplicationBroken{Database: events.MySQL, Scope: "cross", Server: "db-b", Check: "sql_thread", Error: "Error 1062: Duplicate entry '7' for key 'PRIMARY'", Attempts: 3}
	first := publish(t, dbm, broken)
	msgs := srv.WaitMessages(t, 1, 10*time.Second)
	m := msgs[0]
	if diff := cmp.Diff(recipients, m.To); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	if !m.TLS || m.User != "drwatch" || m.From != "drwatch@a.example" {
		t.Errorf("session: tls=%v user=%q from=%q", m.TLS, m.User, m.From)
	}
	wantSubject := "[drwatch a] MySQL replication broken on db-b (cross, check sql_thread): Error 1062: Duplicate entry '7' for key 'PRIMARY'"
	if got := m.Header.Get("Subject"); got != wantSubject {
		t.Errorf("subject %q, want %q", got, wantSubject)
	}
	if got := m.Header.Get("To"); got != "ops@example.com, dba@example.com" {
		t.Errorf("To header %q", got)
	}
	if m.Header.Get("X-Drwatch-Event") != string(first.ID) || !strings.HasPrefix(m.Header.Get("Message-Id"), "<") {
		t.Errorf("headers %v", m.Header)
	}
	for _, w := range []string{"Site:               a (node a-node, service dbmonitor)", "Since:              " + first.Time.Format(time.RFC3339), "Server:             db-b", "3 repair attempt(s); drwatch will not try again", "Correlation id: " + string(first.CorrelationID)} {
		if !strings.Contains(m.Body, w) {
			t.Errorf("body lacks %q:\n%s", w, m.Body)
		}
	}
	bustest.WaitFor(t, 5*time.Second, "NotificationSent", func() bool { return count(t, js, "NotificationSent") == 1 })

	// The same error again, ten minutes later: suppressed.
	clk.Add(10 * time.Minute)
	publish(t, dbm, broken)
	bustest.WaitFor(t, 5*time.Second, "first suppression", func() bool { return count(t, js, "NotificationSuppressed") == 1 })

	// A restarted notifier remembers the window (it is in the KV bucket).
	stop()
	stop = start(t, site, clk, options(srv))
	clk.Add(40 * time.Minute)
	publish(t, dbm, broken)
	bustest.WaitFor(t, 5*time.Second, "suppression after restart", func() bool { return count(t, js, "NotificationSuppressed") == 2 })
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d mails after the restart, want 1", n)
	}

	// Cleared: a recovery mail, and the window is reset.
	publish(t, dbm, events.ReplicationRepaired{Database: events.MySQL, Scope: "cross", Server: "db-b", Check: "sql_thread", Attempts: 0})
	msgs = srv.WaitMessages(t, 2, 5*time.Second)
	if got := msgs[1].Header.Get("Subject"); got != "[drwatch a] RECOVERED: MySQL replication on db-b repaired (check sql_thread)" {
		t.Errorf("recovery subject %q", got)
	}
	clk.Add(time.Minute)
	publish(t, dbm, broken)
	srv.WaitMessages(t, 3, 5*time.Second)

	// Past the interval the same error mails again.
	clk.Add(time.Hour + time.Second)
	publish(t, dbm, broken)
	srv.WaitMessages(t, 4, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.Messages()); n != 4 {
		t.Errorf("%d mails, want 4", n)
	}
}

func TestSMTPOutageLosesNothingAndSendsOnce(t *testing.T) {
	site := bustest.RunJetStream(t)
	srv := smtptest.Start(t, smtptest.Options{Username: "drwatch", Password: "s3cret"})
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	pub := site.Bus(t, "orchestrator", "")
	js := pub.JetStream()
	srv.Stop()
	start(t, site, clk, options(srv))

	publish(t, pub, events.RoleChanged{From: events.RoleStandby, To: events.RoleActive, Epoch: 2, Reason: "peer down"})
	low := events.ArbiterQuorumLow{N: 3, Reachable: 1, Share: 0.33, Warning: 0.7, Unreachable: []string{"arb2", "arb3"}}
	for range 5 {
		publish(t, pub, low)
	}
	// While the server is down, the later copies of the quorum error are
	// suppressed as "being mailed" and the first ones keep retrying.
	bustest.WaitFor(t, 10*time.Second, "4 suppressions during the outage", func() bool { return count(t, js, "NotificationSuppressed") == 4 })
	time.Sleep(time.Second) // several failed retries
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d mails while the server is down", n)
	}
	srv.Restart()
	msgs := srv.WaitMessages(t, 2, 10*time.Second)
	time.Sleep(time.Second) // a duplicate would show up now
	msgs = srv.Messages()
	var subjects []string
	for _, m := range msgs {
		subjects = append(subjects, m.Header.Get("Subject"))
	}
	want := []string{"[drwatch a] only 1 of 3 arbiters reachable (33% < warning 70%)", "[drwatch a] site a is now active (was standby)"}
	if diff := cmp.Diff(want, sortStrings(subjects)); diff != "" {
		t.Errorf("mails after the outage (-want +got):\n%s", diff)
	}
	bustest.WaitFor(t, 5*time.Second, "2 NotificationSent", func() bool { return count(t, js, "NotificationSent") == 2 })
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestFloodOneMail publishes 100 000 identical errors and runs two replicas
// of the notifier on them: one mail, 99 999 suppressions.
func TestFloodOneMail(t *testing.T) {
	const n = 100_000
	site := bustest.RunJetStream(t)
	srv := smtptest.Start(t, smtptest.Options{Username: "drwatch", Password: "s3cret"})
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	pub := site.Bus(t, "arbiter", "")
	js := pub.JetStream()

	// Publishing through Bus.Publish waits for each ack; an async batch of
	// valid envelopes on the raw subject is what a flood looks like.
	begin := time.Now()
	low := events.ArbiterQuorumLow{N: 3, Reachable: 1, Share: 0.33, Warning: 0.7}
	for i := range n {
		env, err := events.New(pub.Source(), low, clk.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := env.Marshal()
		msg := nats.NewMsg(events.Subject(env))
		msg.Data = data
		msg.Header.Set(bus.HeaderType, string(env.Type))
		if _, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(string(env.ID))); err != nil {
			t.Fatal(err)
		}
		if i%10_000 == 9_999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	t.Logf("published %d events in %s", n, time.Since(begin))

	begin = time.Now()
	start(t, site, clk, options(srv))
	start(t, site, clk, options(srv))
	bustest.WaitFor(t, 90*time.Second, "every event handled", func() bool {
		return count(t, js, "NotificationSuppressed")+count(t, js, "NotificationSent") >= n
	})
	t.Logf("two replicas handled %d events in %s", n, time.Since(begin))
	time.Sleep(200 * time.Millisecond)
	if got := len(srv.Messages()); got != 1 {
		t.Errorf("%d mails, want 1", got)
	}
	if got := count(t, js, "NotificationSent"); got != 1 {
		t.Errorf("%d NotificationSent, want 1", got)
	}
	if got := count(t, js, "NotificationSuppressed"); got != n-1 {
		t.Errorf("%d NotificationSuppressed, want %d", got, n-1)
	}
}

func TestConfigErrors(t *testing.T) {
	base := "site: {name: a, peer: b, node: a1}\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"bad security", base + "watchdog: {notification: {email: [ops@example.com], smtp: {host: mx, security: ssl}}}\n", []string{"watchdog.notification.smtp.security", `"ssl"`}},
		{"no host", base + "watchdog: {notification: {email: [ops@example.com]}}\n", []string{"watchdog.notification.smtp.host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(strings.NewReader(tt.yaml))
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}

	// Options built in code are validated by the notifier itself.
	site := bustest.RunJetStream(t)
	deps := service.Deps{Bus: site.Bus(t, "notifier", ""), Log: slog.New(slog.DiscardHandler), Now: time.Now}
	cases := []struct {
		name string
		mod  func(*notifier.Options)
		want string
	}{
		{"no host", func(o *notifier.Options) { o.SMTP.Host = "" }, "watchdog.notification.smtp.host: is empty"},
		{"bad security", func(o *notifier.Options) { o.SMTP.Security = "ssl" }, `watchdog.notification.smtp.security: "ssl" must be starttls, tls or none`},
		{"no recipient", func(o *notifier.Options) { o.To = nil }, "watchdog.notification.email: no recipient"},
		{"bad recipient", func(o *notifier.Options) { o.To = []string{"ops"} }, `watchdog.notification.email[0]: "ops"`},
		{"ack wait below smtp timeout", func(o *notifier.Options) { o.AckWait = time.Second }, "must exceed the SMTP timeout"},
	}
	for _, c := range cases {
		t.Run("options "+c.name, func(t *testing.T) {
			o := notifier.DefaultOptions()
			o.SMTP.Host, o.From, o.To = "mx", "d@x", []string{"ops@example.com"}
			c.mod(&o)
			err := notifier.RunOptions(context.Background(), deps, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// TestRefusedRecipientDoesNotSilenceTheOthers: a server that refuses one
// configured address for good still gets the mail for the rest, once, and
// the log names the refused one.
func TestRefusedRecipientDoesNotSilenceTheOthers(t *testing.T) {
	site := bustest.RunJetStream(t)
	srv := smtptest.Start(t, smtptest.Options{Username: "drwatch", Password: "s3cret", Refuse: map[string]int{"dba@example.com": 550}})
	clk := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	dbm := site.Bus(t, "dbmonitor", "")
	js := dbm.JetStream()
	start(t, site, clk, options(srv))

	publish(t, dbm, events.ReplicationBroken{Database: events.PgSQL, Scope: "cross", Server: "db-b", Check: "receiver", Error: "no WAL receiver", Attempts: 1})
	msgs := srv.WaitMessages(t, 1, 10*time.Second)
	if diff := cmp.Diff([]string{"ops@example.com"}, msgs[0].To); diff != "" {
		t.Errorf("delivered to (-want +got):\n%s", diff)
	}
	bustest.WaitFor(t, 5*time.Second, "NotificationSent", func() bool { return count(t, js, "NotificationSent") == 1 })
	s, err := js.Stream(context.Background(), bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(context.Background(), events.TypeFilter("NotificationSent"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Unmarshal(raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := events.DecodeInto[events.NotificationSent](env)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"dba@example.com: 550 5.1.1 <dba@example.com>: recipient refused"}, sent.Refused); diff != "" {
		t.Errorf("NotificationSent.Refused (-want +got):\n%s", diff)
	}
	// Handled: not retried, so no second mail.
	time.Sleep(500 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d mails, want 1", n)
	}
}
