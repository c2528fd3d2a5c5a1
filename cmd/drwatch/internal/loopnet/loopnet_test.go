package loopnet

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// echo serves lines back and reports each connection's remote IP and when
// the relay closed it.
func echo(t *testing.T) (addr string, remote chan string, closed chan time.Time) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	remote, closed = make(chan string, 4), make(chan time.Time, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			remote <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			go func() {
				_, _ = io.Copy(c, c)
				closed <- time.Now()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String(), remote, closed
}

func roundTrip(t *testing.T, addr string) (net.Conn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		c.Close()
		return nil, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "hello" {
		c.Close()
		return nil, err
	}
	return c, nil
}

func TestCutRefusesHealRestoresLingerHoldsTheFarSide(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	target, remote, closed := echo(t)
	const linger = 300 * time.Millisecond
	r, err := Listen(ctx, target, Options{Source: "127.0.0.2", Linger: linger})
	if err != nil {
		t.Fatal(err)
	}
	c, err := roundTrip(t, r.Addr)
	if err != nil {
		t.Fatalf("through the relay: %v", err)
	}
	defer c.Close()
	if ip := <-remote; ip != "127.0.0.2" {
		t.Errorf("the target sees %s, want the source 127.0.0.2", ip)
	}

	cutAt := time.Now()
	r.Cut()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the near side stays open after a cut")
	}
	if c, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
		c.Close()
		t.Error("a connect succeeds on a cut link; the heartbeat's TCP probe would pass")
	}
	if got := (<-closed).Sub(cutAt); got < linger {
		t.Errorf("the far side closed %s after the cut, want at least the linger %s", got, linger)
	}

	if err := r.Heal(); err != nil {
		t.Fatal(err)
	}
	c2, err := roundTrip(t, r.Addr)
	if err != nil {
		t.Fatalf("after heal: %v", err)
	}
	c2.Close()
}

func TestBadSource(t *testing.T) {
	if _, err := Listen(context.Background(), "127.0.0.1:1", Options{Source: "nope"}); err == nil || !strings.Contains(err.Error(), `source "nope" is not an IP address`) {
		t.Errorf("err = %v", err)
	}
}
