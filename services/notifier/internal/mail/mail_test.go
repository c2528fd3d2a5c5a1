package mail

import (
	"context"
	"mime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drwatch/drwatch/services/notifier/internal/smtptest"
)

func msg() Message {
	return Message{
		From:      "drwatch@site-a.example",
		To:        []string{"ops@example.com", "dba@example.com"},
		Subject:   "[drwatch a] réplication MySQL cassée",
		Body:      "line one\nline two with a very long text " + strings.Repeat("x", 100) + "\n",
		MessageID: "<abc@drwatch>",
		Date:      time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Headers:   [][2]string{{"X-Drwatch-Key", "a/ReplicationBroken/x"}},
	}
}

func TestSend(t *testing.T) {
	tests := []struct {
		name    string
		opts    smtptest.Options
		sec     Security
		user    string
		pass    string
		wantTLS bool
		wantErr string
		// delivered to, when not both recipients; refused by the server
		wantTo      []string
		wantRefused []string
	}{
		{name: "starttls with auth", opts: smtptest.Options{Username: "u", Password: "p"}, sec: STARTTLS, user: "u", pass: "p", wantTLS: true},
		{name: "implicit tls with auth", opts: smtptest.Options{ImplicitTLS: true, Username: "u", Password: "p"}, sec: TLS, user: "u", pass: "p", wantTLS: true},
		{name: "none", opts: smtptest.Options{}, sec: None},
		{name: "starttls not offered", opts: smtptest.Options{NoSTARTTLS: true}, sec: STARTTLS, wantErr: "does not offer STARTTLS"},
		{name: "wrong password", opts: smtptest.Options{Username: "u", Password: "p"}, sec: STARTTLS, user: "u", pass: "bad", wantErr: "AUTH PLAIN as u"},
		{name: "auth required", opts: smtptest.Options{Username: "u", Password: "p"}, sec: STARTTLS, wantErr: "MAIL FROM"},
		{name: "one recipient refused for good: the other gets it", opts: smtptest.Options{Refuse: map[string]int{"dba@example.com": 550}}, sec: STARTTLS, wantTLS: true,
			wantTo: []string{"ops@example.com"}, wantRefused: []string{"dba@example.com: 550 5.1.1 <dba@example.com>: recipient refused"}},
		{name: "a recipient refused for now: the whole mail is tried again", opts: smtptest.Options{Refuse: map[string]int{"dba@example.com": 450}}, sec: STARTTLS,
			wantErr: `RCPT TO dba@example.com: 450 "4.1.1`},
		{name: "every recipient refused", opts: smtptest.Options{Refuse: map[string]int{"dba@example.com": 550, "ops@example.com": 553}}, sec: None,
			wantErr: "every recipient refused: ops@example.com: 553 5.1.1 <ops@example.com>: recipient refused; dba@example.com: 550"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opts)
			s, err := New(Config{Host: "127.0.0.1", Port: srv.Port(), Security: tt.sec, Username: tt.user, Password: tt.pass, RootCAs: srv.CertPool(), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			rc, err := s.Send(context.Background(), msg())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
				}
				if n := len(srv.Messages()); n != 0 {
					t.Errorf("%d messages delivered despite the error", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := srv.Messages()
			if len(got) != 1 {
				t.Fatalf("%d messages, want 1", len(got))
			}
			m := got[0]
			wantTo := tt.wantTo
			if wantTo == nil {
				wantTo = []string{"ops@example.com", "dba@example.com"}
			}
			if diff := cmp.Diff(wantTo, m.To); diff != "" {
				t.Errorf("recipients (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRefused, rc.Refused); diff != "" {
				t.Errorf("refused (-want +got):\n%s", diff)
			}
			if m.TLS != tt.wantTLS || m.User != tt.user {
				t.Errorf("tls=%v user=%q, want %v %q", m.TLS, m.User, tt.wantTLS, tt.user)
			}
			subj, err := m.Header.Date()
			if err != nil || !subj.Equal(msg().Date) {
				t.Errorf("Date header %v (%v)", subj, err)
			}
			if got, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err != nil || got != msg().Subject {
				t.Errorf("subject %q (%v), want %q", got, err, msg().Subject)
			}
			if m.Header.Get("Message-Id") != "<abc@drwatch>" || m.Header.Get("X-Drwatch-Key") != "a/ReplicationBroken/x" {
				t.Errorf("headers %v", m.Header)
			}
			if want := msg().Body; m.Body != want {
				t.Errorf("body %q, want %q", m.Body, want)
			}
		})
	}
}

func TestSendServerDown(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	srv.Stop()
	s, err := New(Config{Host: "127.0.0.1", Port: srv.Port(), Security: None, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), msg()); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("err = %v, want a connect error", err)
	}
	srv.Restart()
	if _, err := s.Send(context.Background(), msg()); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"no host", Config{Port: 25, Security: STARTTLS, Timeout: time.Second}, []string{"watchdog.notification.smtp.host: is empty"}},
		{"bad security", Config{Host: "mx", Port: 25, Security: "ssl", Timeout: time.Second}, []string{`watchdog.notification.smtp.security: "ssl" must be starttls, tls or none`}},
		{"bad port", Config{Host: "mx", Port: 0, Security: TLS, Timeout: time.Second}, []string{"watchdog.notification.smtp.port: 0"}},
		{"all at once", Config{Security: "x"}, []string{"host", "port", "security", "timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
