// Package mailsink is a minimal SMTP server that keeps every message it
// receives, for the example deployment and the end-to-end suite to show and
// assert the mails drwatch sends. It speaks plain SMTP (no TLS, no AUTH):
// configure the notifier with smtp.security "none".
package mailsink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"time"
)

// Message is one received mail.
type Message struct {
	At      time.Time `json:"at"`
	From    string    `json:"from"`
	To      []string  `json:"to"`
	Subject string    `json:"subject"`
	Body    string    `json:"body"`
}

// Sink receives mail and keeps it in memory.
type Sink struct {
	Log *slog.Logger
	Now func() time.Time

	mu   sync.Mutex
	msgs []Message
}

// Messages returns a copy of what was received, oldest first.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Serve accepts SMTP connections on l until ctx ends.
func (s *Sink) Serve(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("mailsink: accept: %w", err)
		}
		wg.Go(func() {
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			if err := s.session(c); err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
				s.Log.Warn("smtp session failed", "remote", c.RemoteAddr(), "err", err)
			}
		})
	}
}

func (s *Sink) session(c net.Conn) error {
	r := bufio.NewReader(c)
	reply := func(line string) error {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := io.WriteString(c, line+"\r\n")
		return err
	}
	if err := reply("220 drwatch-mailsink ESMTP"); err != nil {
		return err
	}
	var from string
	var to []string
	for {
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			err = reply("250-drwatch-mailsink\r\n250-8BITMIME\r\n250 SMTPUTF8")
		case "HELO":
			err = reply("250 drwatch-mailsink")
		case "MAIL":
			from, to = address(arg), nil
			err = reply("250 ok")
		case "RCPT":
			to = append(to, address(arg))
			err = reply("250 ok")
		case "DATA":
			if err = reply("354 end with <CRLF>.<CRLF>"); err != nil {
				return err
			}
			data, rerr := readData(r)
			if rerr != nil {
				return rerr
			}
			s.keep(from, to, data)
			err = reply("250 queued")
		case "RSET":
			from, to = "", nil
			err = reply("250 ok")
		case "NOOP":
			err = reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return nil
		default:
			err = reply("502 command not implemented")
		}
		if err != nil {
			return err
		}
	}
}

func address(arg string) string {
	if i := strings.Index(arg, "<"); i >= 0 {
		if j := strings.Index(arg[i:], ">"); j > 0 {
			return arg[i+1 : i+j]
		}
	}
	_, v, _ := strings.Cut(arg, ":")
	return strings.TrimSpace(v)
}

func readData(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if strings.TrimRight(line, "\r\n") == "." {
			return b.String(), nil
		}
		b.WriteString(strings.TrimPrefix(line, "."))
	}
}

func (s *Sink) keep(from string, to []string, data string) {
	m := Message{At: s.Now().UTC(), From: from, To: to, Body: data}
	if msg, err := mail.ReadMessage(strings.NewReader(data)); err == nil {
		dec := new(mime.WordDecoder)
		m.Subject = msg.Header.Get("Subject")
		if d, err := dec.DecodeHeader(m.Subject); err == nil {
			m.Subject = d
		}
		var body io.Reader = msg.Body
		if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		if b, err := io.ReadAll(body); err == nil {
			m.Body = string(b)
		}
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	s.Log.Info("mail received", "from", m.From, "to", m.To, "subject", m.Subject)
}
