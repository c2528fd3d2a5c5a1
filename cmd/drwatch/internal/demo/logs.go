package demo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/status"
	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
)

// Record is one event of a site's log with its sequence.
type Record struct {
	Seq uint64
	Env *events.Envelope
}

// logReader reads one site's log over its own NATS connection, which
// redials by itself when the site restarts on the same port.
type logReader struct {
	nc  *nats.Conn
	bus *bus.Bus
}

func openLog(site *Site) (*logReader, error) {
	url := fmt.Sprintf("nats://%s:%d", site.Config.NATS.Embedded.Host, site.Config.NATS.Embedded.Port)
	opts, err := service.Credentials(site.Config, bus.IdentityCLI)
	if err != nil {
		return nil, fmt.Errorf("site %s's log: %w", site.Name, err)
	}
	nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond),
		nats.RetryOnFailedConnect(true))...)
	if err != nil {
		return nil, fmt.Errorf("site %s's log: %w", site.Name, err)
	}
	b, err := bus.New(nc, bus.Options{Source: events.Source{Site: events.SiteID(site.Name), Node: site.Name + "-node", Service: "demo"}})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &logReader{nc: nc, bus: b}, nil
}

func (r *logReader) close() { r.nc.Close() }

// read returns the records after seq from.
func (r *logReader) read(ctx context.Context, from uint64) ([]Record, error) {
	if r.nc.Status() != nats.CONNECTED {
		return nil, fmt.Errorf("not connected (%s)", r.nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out []Record
	_, err := r.bus.Replay(ctx, from+1, nil, func(seq uint64, env *events.Envelope) error {
		out = append(out, Record{Seq: seq, Env: env})
		return nil
	})
	return out, err
}

// ReadLog reads a whole site's log; the site must be running.
func (t *Topology) ReadLog(ctx context.Context, name string) ([]Record, error) {
	r, err := openLog(t.sites[name])
	if err != nil {
		return nil, err
	}
	defer r.close()
	deadline := time.Now().Add(5 * time.Second)
	for r.nc.Status() != nats.CONNECTED {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("site %s's log: not connected", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r.read(ctx, 0)
}

// watcher keeps both sites' status projections up to date.
type watcher struct {
	t       *Topology
	readers map[string]*logReader

	mu    sync.Mutex
	proj  map[string]*status.Projection
	last  map[string]uint64
	recs  map[string][]Record
	fresh map[string]bool
}

func newWatcher(t *Topology) (*watcher, error) {
	w := &watcher{t: t, readers: map[string]*logReader{}, proj: map[string]*status.Projection{}, last: map[string]uint64{}, recs: map[string][]Record{}, fresh: map[string]bool{}}
	for _, name := range Sites {
		r, err := openLog(t.sites[name])
		if err != nil {
			w.close()
			return nil, err
		}
		w.readers[name] = r
		w.proj[name] = status.New(t.sites[name].Config)
	}
	return w, nil
}

func (w *watcher) close() {
	for _, r := range w.readers {
		r.close()
	}
}

// poll reads what each running site logged since the last poll.
func (w *watcher) poll(ctx context.Context) {
	for _, name := range Sites {
		if !w.t.sites[name].Running() {
			w.mu.Lock()
			w.fresh[name] = false
			w.mu.Unlock()
			continue
		}
		w.mu.Lock()
		from := w.last[name]
		w.mu.Unlock()
		recs, err := w.readers[name].read(ctx, from)
		w.mu.Lock()
		w.fresh[name] = err == nil
		for _, r := range recs {
			w.proj[name].Apply(r.Env)
			w.last[name] = r.Seq
		}
		w.recs[name] = append(w.recs[name], recs...)
		w.mu.Unlock()
	}
}

// view returns site name as the freshest log tells it: its own log while
// it runs, else the peer's copy.
func (w *watcher) view(name string) (s status.Site, fromPeer bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fresh[name] {
		return *w.proj[name].Sites[events.SiteID(name)], false
	}
	p := w.proj[peerOf(name)]
	if st, ok := p.Sites[events.SiteID(name)]; ok {
		return *st, true
	}
	return *w.proj[name].Sites[events.SiteID(name)], true
}

// records returns what the watcher read of a site's log.
func (w *watcher) records(name string) []Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Record(nil), w.recs[name]...)
}
