// Package mail composes plain-text notification mails and hands them to an
// SMTP server over STARTTLS, implicit TLS or plain TCP, with AUTH PLAIN.
package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// Security is how the connection to the SMTP server is protected.
type Security string

// The values of watchdog.notification.smtp.security.
const (
	STARTTLS Security = "starttls"
	TLS      Security = "tls"
	None     Security = "none"
)

// Config says how to reach the SMTP server.
type Config struct {
	Host     string
	Port     int
	Security Security
	// Username, when set, authenticates with AUTH PLAIN (only over TLS,
	// or to a loopback server).
	Username, Password string
	// RootCAs verifies the server's certificate; nil means the system pool.
	RootCAs *x509.CertPool
	// HelloName is sent in EHLO (default "localhost").
	HelloName string
	// Timeout bounds one whole delivery.
	Timeout time.Duration
}

// Validate checks the config; errors name the config field.
func (c Config) Validate() error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("watchdog.notification.smtp.host: is empty; set the SMTP relay's host name"))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("watchdog.notification.smtp.port: %d must be 1-65535 (25 or 587 for starttls, 465 for tls)", c.Port))
	}
	switch c.Security {
	case STARTTLS, TLS, None:
	default:
		errs = append(errs, fmt.Errorf("watchdog.notification.smtp.security: %q must be starttls, tls or none", c.Security))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("smtp timeout: %s must be positive", c.Timeout))
	}
	return errors.Join(errs...)
}

// Message is one mail.
type Message struct {
	From string
	To   []string
	// Subject and Body are plain UTF-8 text.
	Subject string
	Body    string
	// MessageID is stable for one notification, so a mail sent twice
	// after a crash between DATA and recording it can be recognised by
	// the receiving side.
	MessageID string
	Date      time.Time
	// Headers are extra headers (X-Drwatch-*).
	Headers [][2]string
}

// Bytes renders the message in RFC 5322 form: UTF-8 text, quoted-printable
// body, encoded subject.
func (m Message) Bytes() []byte {
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", m.From)
	h("To", strings.Join(m.To, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", m.Date.Format(time.RFC1123Z))
	h("Message-ID", m.MessageID)
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	for _, kv := range m.Headers {
		h(kv[0], mime.QEncoding.Encode("utf-8", kv[1]))
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(m.Body, "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}

// SMTP delivers messages to one server.
type SMTP struct {
	cfg Config
}

// New returns a sender for cfg, which must be valid.
func New(cfg Config) (*SMTP, error) {
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &SMTP{cfg: cfg}, nil
}

// Receipt says what the server did with an accepted message.
type Receipt struct {
	// Refused lists the recipients the server refused for good (a 5xx
	// reply to RCPT TO), each as "address: reply". The message went to
	// the others: one mistyped address must not silence every mail.
	Refused []string
}

// ErrAllRefused is Send's error when the server refused every recipient.
var ErrAllRefused = errors.New("every recipient refused")

// Send hands m to the server. It returns once the server accepted the
// DATA (then the mail is the server's) or with an error (then it was not
// accepted, or the answer was lost — the residual window for a duplicate).
// A recipient refused with a 5xx reply is left out and named in the
// Receipt; a 4xx reply or a lost connection fails the whole message, to be
// sent again.
func (s *SMTP) Send(ctx context.Context, m Message) (Receipt, error) {
	var rc Receipt
	err := s.send(ctx, m, &rc)
	return rc, err
}

func (s *SMTP) send(ctx context.Context, m Message, rc *Receipt) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	tlsCfg := &tls.Config{ServerName: s.cfg.Host, RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	var conn net.Conn
	var err error
	if s.cfg.Security == TLS {
		conn, err = (&tls.Dialer{Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("smtp %s: connect: %w", addr, err)
	}
	// net/smtp has no context: the deadline bounds every exchange, and a
	// cancelled context closes the connection.
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: greeting: %w", addr, err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return fmt.Errorf("smtp %s: EHLO: %w", addr, err)
	}
	if s.cfg.Security == STARTTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp %s: server does not offer STARTTLS (security is starttls; use tls or none if that is intended)", addr)
		}
		if err := c.StartTLS(tlsCfg); err != nil {
			return fmt.Errorf("smtp %s: STARTTLS: %w", addr, err)
		}
	}
	if s.cfg.Username != "" {
		// PlainAuth refuses to send the password in clear unless the server
		// is on loopback.
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host)); err != nil {
			return fmt.Errorf("smtp %s: AUTH PLAIN as %s: %w", addr, s.cfg.Username, err)
		}
	}
	if err := c.Mail(m.From); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM %s: %w", addr, m.From, err)
	}
	for _, to := range m.To {
		err := c.Rcpt(to)
		var reply *textproto.Error
		if errors.As(err, &reply) && reply.Code >= 500 && reply.Code < 600 {
			rc.Refused = append(rc.Refused, fmt.Sprintf("%s: %d %s", to, reply.Code, reply.Msg))
			continue
		}
		if err != nil {
			return fmt.Errorf("smtp %s: RCPT TO %s: %w", addr, to, err)
		}
	}
	if len(rc.Refused) == len(m.To) {
		return fmt.Errorf("smtp %s: %w: %s", addr, ErrAllRefused, strings.Join(rc.Refused, "; "))
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", addr, err)
	}
	if _, err := w.Write(m.Bytes()); err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: end of DATA: %w", addr, err)
	}
	// Accepted. A failing QUIT does not undo that.
	_ = c.Quit()
	return nil
}
