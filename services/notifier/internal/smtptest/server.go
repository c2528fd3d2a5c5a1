// Package smtptest runs a small real SMTP server in process for tests: it
// speaks EHLO/HELO, STARTTLS, implicit TLS, AUTH PLAIN, MAIL, RCPT, DATA,
// RSET, NOOP and QUIT on a loopback port, records every delivered message,
// and can be stopped and restarted on the same port to stand for an outage.
package smtptest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options shape the server.
type Options struct {
	// ImplicitTLS serves TLS from the first byte (port 465 style);
	// otherwise STARTTLS is offered unless NoSTARTTLS.
	ImplicitTLS bool
	NoSTARTTLS  bool
	// Username and Password, when set, are required (AUTH PLAIN) before
	// MAIL.
	Username, Password string
	// Refuse answers RCPT TO for these addresses with the given reply
	// code (550: a permanent refusal, 450: try later).
	Refuse map[string]int
}

// Message is one delivered message.
type Message struct {
	From string
	To   []string
	Data []byte
	// Header and Body are Data parsed; Body is decoded from
	// quoted-printable when the message says so.
	Header mail.Header
	Body   string
	TLS    bool
	User   string
}

// Server is a running SMTP server.
type Server struct {
	Addr string
	opts Options
	t    testing.TB
	cert tls.Certificate
	pool *x509.CertPool

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]struct{}
	msgs     []Message
	sessions int
	wg       sync.WaitGroup
}

// Start runs a server on a random loopback port, stopped when the test
// ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts, t: t, conns: map[net.Conn]struct{}{}}
	s.cert, s.pool = selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s.Addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

// CertPool verifies the server's certificate (for 127.0.0.1 and
// localhost).
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// Port of Addr.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Stop closes the listener and every open session, like a server going
// down; delivered messages are kept.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Restart listens again on the same address.
func (s *Server) Restart() {
	s.t.Helper()
	var ln net.Listener
	var err error
	// The port was ours a moment ago; retry briefly in case the kernel
	// still holds it.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("smtptest: restart on %s: %v", s.Addr, err)
	}
	s.serve(ln)
}

// Messages returns the delivered messages so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Sessions counts connections accepted so far.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// WaitMessages waits until at least n messages were delivered.
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := s.Messages()
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtptest: %d messages delivered after %s, want %d", len(msgs), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) serve(ln net.Listener) {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.sessions++
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				s.session(c)
			}()
		}
	}()
}

type session struct {
	s    *Server
	conn net.Conn
	tp   *textproto.Conn
	tls  bool
	user string
	from string
	to   []string
}

func (s *Server) session(c net.Conn) {
	ss := &session{s: s, conn: c}
	if s.opts.ImplicitTLS {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{s.cert}})
		if err := tc.Handshake(); err != nil {
			return
		}
		ss.conn, ss.tls = tc, true
		s.track(c, tc)
	}
	ss.tp = textproto.NewConn(ss.conn)
	ss.reply(220, "smtptest ESMTP ready")
	for {
		line, err := ss.tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		if !ss.command(strings.ToUpper(verb), arg) {
			return
		}
	}
}

func (s *Server) track(old, c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, old)
	s.conns[c] = struct{}{}
}

func (ss *session) reply(code int, lines ...string) {
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		_ = ss.tp.PrintfLine("%d%s%s", code, sep, l)
	}
}

// command handles one command; false ends the session.
func (ss *session) command(verb, arg string) bool {
	o := ss.s.opts
	switch verb {
	case "EHLO":
		lines := []string{"smtptest greets " + arg, "8BITMIME", "PIPELINING"}
		if !ss.tls && !o.NoSTARTTLS {
			lines = append(lines, "STARTTLS")
		}
		if o.Username != "" {
			lines = append(lines, "AUTH PLAIN")
		}
		ss.reply(250, lines...)
	case "HELO":
		ss.reply(250, "smtptest")
	case "STARTTLS":
		if ss.tls || o.NoSTARTTLS {
			ss.reply(503, "5.5.1 TLS not available")
			return true
		}
		ss.reply(220, "2.0.0 go ahead")
		tc := tls.Server(ss.conn, &tls.Config{Certificates: []tls.Certificate{ss.s.cert}})
		if err := tc.Handshake(); err != nil {
			return false
		}
		ss.s.track(ss.conn, tc)
		ss.conn, ss.tls = tc, true
		ss.tp = textproto.NewConn(tc)
		ss.from, ss.to, ss.user = "", nil, ""
	case "AUTH":
		mech, resp, _ := strings.Cut(arg, " ")
		if !strings.EqualFold(mech, "PLAIN") {
			ss.reply(504, "5.5.4 only PLAIN")
			return true
		}
		if resp == "" {
			ss.reply(334, "")
			l, err := ss.tp.ReadLine()
			if err != nil {
				return false
			}
			resp = l
		}
		raw, err := base64.StdEncoding.DecodeString(resp)
		parts := strings.Split(string(raw), "\x00")
		if err != nil || len(parts) != 3 || parts[1] != o.Username || parts[2] != o.Password || o.Username == "" {
			ss.reply(535, "5.7.8 authentication failed")
			return true
		}
		ss.user = parts[1]
		ss.reply(235, "2.7.0 authenticated")
	case "MAIL":
		if o.Username != "" && ss.user == "" {
			ss.reply(530, "5.7.0 authentication required")
			return true
		}
		ss.from, ss.to = addr(arg, "FROM:"), nil
		ss.reply(250, "2.1.0 ok")
	case "RCPT":
		if ss.from == "" {
			ss.reply(503, "5.5.1 MAIL first")
			return true
		}
		to := addr(arg, "TO:")
		if code := o.Refuse[to]; code != 0 {
			ss.reply(code, fmt.Sprintf("%d.1.1 <%s>: recipient refused", code/100, to))
			return true
		}
		ss.to = append(ss.to, to)
		ss.reply(250, "2.1.5 ok")
	case "DATA":
		if len(ss.to) == 0 {
			ss.reply(503, "5.5.1 RCPT first")
			return true
		}
		ss.reply(354, "end with <CRLF>.<CRLF>")
		data, err := ss.tp.ReadDotBytes()
		if err != nil {
			return false
		}
		ss.s.deliver(Message{From: ss.from, To: ss.to, Data: data, TLS: ss.tls, User: ss.user})
		ss.from, ss.to = "", nil
		ss.reply(250, "2.0.0 queued")
	case "RSET":
		ss.from, ss.to = "", nil
		ss.reply(250, "2.0.0 ok")
	case "NOOP":
		ss.reply(250, "2.0.0 ok")
	case "QUIT":
		ss.reply(221, "2.0.0 bye")
		return false
	default:
		ss.reply(502, "5.5.2 command not implemented")
	}
	return true
}

func addr(arg, prefix string) string {
	arg = strings.TrimSpace(arg)
	if len(arg) >= len(prefix) && strings.EqualFold(arg[:len(prefix)], prefix) {
		arg = arg[len(prefix):]
	}
	arg, _, _ = strings.Cut(strings.TrimSpace(arg), " ")
	return strings.Trim(arg, "<>")
}

func (s *Server) deliver(m Message) {
	if pm, err := mail.ReadMessage(bytes.NewReader(m.Data)); err == nil {
		m.Header = pm.Header
		var body io.Reader = pm.Body
		if strings.EqualFold(pm.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(pm.Body)
		}
		b, _ := io.ReadAll(bufio.NewReader(body))
		m.Body = string(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
}

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}
