package chaos

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

// Client is the helper run in the client namespace (`drchaos client`): it
// appends through the VIP and directly to each site's database, and reads
// each database's read_only every -sample, printing one line per
// acknowledged append and per reading:
//
//	ack <via> <id> <sent ns> <ack ns>
//	w <site> <ns> 1|0|?      (1 writable, 0 read-only, ? no answer in time)
//
// A failed or timed-out append is abandoned: its fate is unknown, so it
// counts neither as acknowledged nor as lost.
func Client(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	every := fs.Duration("every", 20*time.Millisecond, "pause between appends on each target")
	sample := fs.Duration("sample", 10*time.Millisecond, "period of the read_only readings")
	timeout := fs.Duration("timeout", 250*time.Millisecond, "bound of one append, connect included")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	emit := func(format string, a ...any) {
		mu.Lock()
		fmt.Fprintf(out, format, a...)
		mu.Unlock()
	}
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				mu.Lock()
				out.Flush()
				mu.Unlock()
			}
		}
	}()
	defer func() { mu.Lock(); out.Flush(); mu.Unlock() }()
	var next atomic.Int64
	next.Store(time.Now().UnixMilli() * 1000) // unique across restarts
	targets := map[string]string{"vip": vipAddr, "a": siteA.addr, "b": siteB.addr}
	var wg sync.WaitGroup
	for via, host := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			appendLoop(ctx, via, host, *every, *timeout, &next, emit)
		}()
	}
	for _, s := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sampleLoop(ctx, s, *sample, emit)
		}()
	}
	wg.Wait()
	return nil
}

func appDSN(host string, timeout time.Duration) string {
	return fmt.Sprintf("%s:%s@tcp(%s:3306)/chaos?timeout=%s&readTimeout=%s&writeTimeout=%s", appUser, appPass, host, timeout, timeout, timeout)
}

func appendLoop(ctx context.Context, via, host string, every, timeout time.Duration, next *atomic.Int64, emit func(string, ...any)) {
	var db *sql.DB
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	for ctx.Err() == nil {
		if db == nil {
			var err error
			if db, err = sql.Open("mysql", appDSN(host, timeout)); err != nil {
				return
			}
			db.SetMaxOpenConns(1)
		}
		id := next.Add(1)
		sent := time.Now()
		wctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := db.ExecContext(wctx, "INSERT INTO appends (id, via, at) VALUES (?, ?, ?)", id, via, sent.UnixNano())
		cancel()
		if err == nil {
			emit("ack %s %d %d %d\n", via, id, sent.UnixNano(), time.Now().UnixNano())
		} else {
			// A new connection for the next append: through the VIP it
			// must reach whoever holds it now.
			db.Close()
			db = nil
		}
		_ = sleepCtx(ctx, every)
	}
}

func sampleLoop(ctx context.Context, s node, every time.Duration, emit func(string, ...any)) {
	db, err := sql.Open("mysql", appDSN(s.addr, 50*time.Millisecond))
	if err != nil {
		return
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	for ctx.Err() == nil {
		t := time.Now()
		qctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		var ro int
		err := db.QueryRowContext(qctx, "SELECT @@read_only").Scan(&ro)
		cancel()
		v := "?"
		switch {
		case err == nil && ro == 0:
			v = "1"
		case err == nil:
			v = "0"
		}
		emit("w %s %d %s\n", s.name, t.UnixNano(), v)
		if d := every - time.Since(t); d > 0 {
			_ = sleepCtx(ctx, d)
		}
	}
}
