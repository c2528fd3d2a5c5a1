// Package writer is the example's client: it inserts numbered rows through
// the VIP, one at a time, and records which were acknowledged, so a test
// can count the committed rows a failover lost (RPO) and how long the
// client could not write (its view of the RTO).
package writer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Options configure a writer.
type Options struct {
	// DSN reaches MariaDB through the VIP (go-sql-driver form).
	DSN string
	// Name tags the rows, so several writers can share a table.
	Name string
	// Pause between two inserts.
	Pause time.Duration
	Log   *slog.Logger
	Now   func() time.Time
}

// Status is what the writer has seen.
type Status struct {
	// Acked is the highest sequence number acknowledged; every number
	// from 1 to Acked was acknowledged (the writer retries a number until
	// it is).
	Acked     int64     `json:"acked"`
	LastAckAt time.Time `json:"lastAckAt"`
	Failures  int64     `json:"failures"`
	LastError string    `json:"lastError,omitempty"`
	// LongestGap is the longest time between two acknowledgements: the
	// client's outage.
	LongestGap time.Duration `json:"longestGap"`
}

// Writer inserts rows until its context ends.
type Writer struct {
	opts Options
	mu   sync.Mutex
	st   Status
}

// New checks the options and returns a writer.
func New(o Options) (*Writer, error) {
	if o.DSN == "" {
		return nil, errors.New("writer: a DSN is required")
	}
	if o.Name == "" {
		o.Name = "writer"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Writer{opts: o}, nil
}

// Status returns a snapshot.
func (w *Writer) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

// Run inserts rows until ctx ends. Each attempt uses a connection opened
// for it after a failure, so the client follows the VIP to whichever
// server holds it now.
func (w *Writer) Run(ctx context.Context) error {
	db, err := sql.Open("mysql", w.opts.DSN)
	if err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(30 * time.Second)
	seq := int64(1)
	start := w.opts.Now()
	w.mu.Lock()
	w.st.LastAckAt = start
	w.mu.Unlock()
	for ctx.Err() == nil {
		err := w.insert(ctx, db, seq)
		now := w.opts.Now()
		w.mu.Lock()
		if err == nil {
			if gap := now.Sub(w.st.LastAckAt); gap > w.st.LongestGap {
				w.st.LongestGap = gap
			}
			w.st.Acked, w.st.LastAckAt = seq, now
		} else if ctx.Err() == nil {
			w.st.Failures++
			if w.st.LastError != err.Error() {
				w.opts.Log.Warn("write failed", "seq", seq, "err", err)
			}
			w.st.LastError = err.Error()
		}
		w.mu.Unlock()
		pause := w.opts.Pause
		if err == nil {
			seq++
		} else {
			// A dead connection is dropped so the next attempt dials again.
			db.SetMaxIdleConns(0)
			db.SetMaxIdleConns(1)
			pause = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	return nil
}

func (w *Writer) insert(ctx context.Context, db *sql.DB, seq int64) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := db.ExecContext(ctx, "INSERT INTO app.writes (seq, writer) VALUES (?, ?)", seq, w.opts.Name)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1062 {
		// The previous attempt committed but its answer was lost: the row
		// is there, which is what an acknowledgement promises.
		return nil
	}
	return err
}
