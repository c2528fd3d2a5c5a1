package main

// Helpers the harness runs inside namespaces by re-executing itself:
// kvserve (the service a VIP fronts), writer (the client's steady write
// load), natswatch (drwatch's events with arrival times) and pgcheck
// (which acknowledged rows the new primary lacks), vip and nfqdelay (the
// inter-site link's jitter where tc netem is missing).

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vishvananda/netlink"

	"github.com/drwatch/drwatch/bench/internal/nfqdelay"
)

func helper(ctx context.Context, name string, args []string) error {
	switch name {
	case "kvserve":
		return kvServe(ctx, args)
	case "writer":
		return writer(ctx, args)
	case "natswatch":
		return natsWatch(ctx, args)
	case "pgcheck":
		return pgCheck(ctx, args)
	case "vip":
		return vipHelper(args)
	case "nfqdelay":
		return nfqDelay(ctx, args)
	}
	return fmt.Errorf("unknown helper %q", name)
}

// kvServe acknowledges "W <seq>" lines with "OK <seq>" after appending the
// seq to a file and syncing it: an acknowledged write is durable here.
func kvServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kvserve", flag.ContinueOnError)
	listen := fs.String("listen", ":7000", "address")
	path := fs.String("file", "kv.data", "append-only file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.OpenFile(*path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	var mu sync.Mutex
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil
		}
		go func() {
			defer c.Close()
			r := bufio.NewScanner(c)
			for r.Scan() {
				seq, ok := strings.CutPrefix(r.Text(), "W ")
				if !ok {
					return
				}
				mu.Lock()
				_, err := fmt.Fprintln(f, seq)
				if err == nil {
					err = f.Sync()
				}
				mu.Unlock()
				if err != nil {
					return
				}
				if _, err := fmt.Fprintf(c, "OK %s\n", seq); err != nil {
					return
				}
			}
		}()
	}
}

// writer writes one row every -every to the target, each bounded by
// -timeout, and prints "<seq> <sent ns> <ack ns>" for each acknowledged (committed)
// write. A failed or timed-out write is abandoned and the next seq tried:
// its fate is unknown, so it counts neither as acknowledged nor as lost.
func writer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("writer", flag.ContinueOnError)
	kind := fs.String("kind", "kv", "kv or pg")
	target := fs.String("target", "", "host:port (kv) or DSN (pg)")
	every := fs.Duration("every", 10*time.Millisecond, "pause between writes")
	timeout := fs.Duration("timeout", 250*time.Millisecond, "bound of one write, connect included")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	var w interface {
		write(ctx context.Context, seq int64) error
		close()
	}
	switch *kind {
	case "kv":
		w = &kvWriter{addr: *target}
	case "pg":
		w = &pgWriter{dsn: *target}
	default:
		return fmt.Errorf("writer: -kind %q: want kv or pg", *kind)
	}
	defer w.close()
	seq := time.Now().UnixMilli() * 1000 // unique across writer restarts
	for ctx.Err() == nil {
		seq++
		sent := time.Now()
		wctx, cancel := context.WithTimeout(ctx, *timeout)
		err := w.write(wctx, seq)
		cancel()
		if err == nil {
			fmt.Fprintf(out, "%d %d %d\n", seq, sent.UnixNano(), time.Now().UnixNano())
			out.Flush()
		} else {
			w.close()
		}
		time.Sleep(*every)
	}
	return nil
}

type kvWriter struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
}

func (k *kvWriter) write(ctx context.Context, seq int64) error {
	if k.c == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", k.addr)
		if err != nil {
			return err
		}
		k.c, k.r = c, bufio.NewReader(c)
	}
	dl, _ := ctx.Deadline()
	_ = k.c.SetDeadline(dl)
	if _, err := fmt.Fprintf(k.c, "W %d\n", seq); err != nil {
		return err
	}
	line, err := k.r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "OK "+strconv.FormatInt(seq, 10) {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

func (k *kvWriter) close() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

type pgWriter struct {
	dsn string
	c   *pgx.Conn
}

func (p *pgWriter) write(ctx context.Context, seq int64) error {
	if p.c == nil {
		c, err := pgx.Connect(ctx, p.dsn)
		if err != nil {
			return err
		}
		p.c = c
	}
	// Autocommit: the ack is the commit (synchronous_commit as configured).
	_, err := p.c.Exec(ctx, "INSERT INTO bench(id) VALUES ($1)", seq)
	return err
}

func (p *pgWriter) close() {
	if p.c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		p.c.Close(ctx)
		cancel()
		p.c = nil
	}
}

// natsWatch prints "<unix ns> <subject>" for every drwatch event the
// site's log stores from now on, as it arrives, reconnecting forever. It
// logs in as the site's operator (the cli seed in -key): no identity may
// subscribe to the event subjects themselves, so it follows the log with
// an ordered consumer, as the CLI does.
func natsWatch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("natswatch", flag.ContinueOnError)
	url := fs.String("url", "nats://127.0.0.1:4222", "site server")
	key := fs.String("key", "", "the site's cli nkey seed (<nats.embedded.keysDir>/cli.nk)")
	subject := fs.String("subject", "drwatch.*.evt.>", "subjects")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("natswatch: -key is required (the site's NATS admits no client without one)")
	}
	auth, err := nats.NkeyOptionFromSeed(*key)
	if err != nil {
		return fmt.Errorf("natswatch: %w", err)
	}
	nc, err := nats.Connect(*url, auth, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// The site process creates the log (EVENTS, pkg/bus) just after its
	// server accepts clients.
	var stream jetstream.Stream
	for {
		if stream, err = js.Stream(ctx, "EVENTS"); err == nil {
			break
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil
		}
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{*subject}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	cc, err := cons.Consume(func(m jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf("%d %s\n", time.Now().UnixNano(), m.Subject())
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	<-ctx.Done()
	return nil
}

// pgCheck reads acknowledged seqs on stdin and prints how many the server
// lacks.
func pgCheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pgcheck", flag.ContinueOnError)
	dsn := fs.String("dsn", "", "server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ids []int64
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		v, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64)
		if err == nil {
			ids = append(ids, v)
		}
	}
	if len(ids) == 0 {
		return errors.New("pgcheck: no seqs on stdin")
	}
	c, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var present int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM bench WHERE id = ANY($1)", ids).Scan(&present); err != nil {
		return err
	}
	fmt.Println(len(ids) - present)
	return nil
}

// tail follows a growing file of lines.
type tail struct {
	path string
	off  int64
	part string
}

// lines returns the complete lines appended since the last call.
func (t *tail) lines() []string {
	f, err := os.Open(t.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(f)
	t.off += int64(len(b))
	s := t.part + string(b)
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		t.part = s
		return nil
	}
	t.part = s[i+1:]
	return strings.Split(s[:i], "\n")
}

// vipHelper adds or deletes an address: "vip add|del 10.77.0.51/24 eth0".
// Patroni's callback runs it as postgres with CAP_NET_ADMIN as a file
// capability. Adding a held address or deleting an absent one succeeds.
func vipHelper(args []string) error {
	if len(args) != 3 || (args[0] != "add" && args[0] != "del") {
		return errors.New("usage: vip add|del ADDR/LEN DEV")
	}
	addr, err := netlink.ParseAddr(args[1])
	if err != nil {
		return fmt.Errorf("vip: %w", err)
	}
	link, err := netlink.LinkByName(args[2])
	if err != nil {
		return fmt.Errorf("vip: %w", err)
	}
	if args[0] == "add" {
		if err := netlink.AddrAdd(link, addr); err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("vip add: %w", err)
		}
		return nil
	}
	if err := netlink.AddrDel(link, addr); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("vip del: %w", err)
	}
	return nil
}

// nfqDelay holds the packets of an NFQUEUE queue for delay±jitter each
// until it is stopped, then prints what it did as its last line.
func nfqDelay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("nfqdelay", flag.ContinueOnError)
	num := fs.Uint("queue", 7, "NFQUEUE number")
	delay := fs.Duration("delay", 50*time.Millisecond, "mean delay")
	jitter := fs.Duration("jitter", 50*time.Millisecond, "each packet waits delay±jitter, uniform")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *num > 65535 {
		return fmt.Errorf("-queue %d: NFQUEUE numbers are 0-65535", *num)
	}
	q, err := nfqdelay.Open(uint16(*num))
	if err != nil {
		return err
	}
	defer q.Close()
	fmt.Printf("queue %d bound: delay %s ±%s\n", *num, *delay, *jitter)
	st, err := q.Run(ctx, nfqdelay.Uniform(*delay, *jitter))
	fmt.Println(st)
	return err
}
