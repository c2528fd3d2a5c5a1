package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/drwatch/drwatch/pkg/bus"
	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
	"github.com/drwatch/drwatch/pkg/service"
)

// errUnreachable marks a site whose NATS server or log cannot be reached;
// the command changed nothing.
var errUnreachable = errors.New("site unreachable")

// errTimeout marks a request published but not answered in time.
var errTimeout = errors.New("no answer in time")

// siteURL is where the site's services connect: nats.url, else the
// embedded server's address.
func siteURL(cfg *config.Config) string {
	if cfg.NATS.URL != "" {
		return cfg.NATS.URL
	}
	return fmt.Sprintf("nats://%s:%d", cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port)
}

// client is the CLI's connection to a running site.
type client struct {
	cfg *config.Config
	nc  *nats.Conn
	bus *bus.Bus
}

// dial connects to the site of cfg as service "cli". It never creates or
// updates a stream: a site without its log is reported, not repaired.
func dial(ctx context.Context, cfg *config.Config, timeout time.Duration) (*client, error) {
	url := siteURL(cfg)
	opts, err := service.Credentials(cfg, bus.IdentityCLI)
	if err != nil {
		// No key yet: the site process never started here.
		return nil, fmt.Errorf("%w: site %s: NATS at %s: %v (is the site running? start it with `drwatch start`)", errUnreachable, cfg.Site.Name, url, err)
	}
	nc, err := nats.Connect(url, append(opts, nats.Timeout(timeout), nats.NoReconnect())...)
	if err != nil {
		return nil, fmt.Errorf("%w: site %s: NATS at %s: %v (is the site running? start it with `drwatch start`)", errUnreachable, cfg.Site.Name, url, err)
	}
	b, err := bus.New(nc, bus.Options{
		Source: events.Source{Site: events.SiteID(cfg.Site.Name), Node: cfg.Site.Node, Service: "cli"},
		Peer:   events.SiteID(cfg.Site.Peer),
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := b.JetStream().Stream(sctx, bus.EventsStream); err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%w: site %s at %s has no %s stream: the site process never started there", errUnreachable, cfg.Site.Name, url, bus.EventsStream)
		}
		return nil, fmt.Errorf("%w: site %s at %s: JetStream: %v", errUnreachable, cfg.Site.Name, url, err)
	}
	return &client{cfg: cfg, nc: nc, bus: b}, nil
}

func (c *client) Close() { c.nc.Close() }

// lastSeq is the log's last sequence, from which a follower sees only
// what happens after now.
func (c *client) lastSeq(ctx context.Context) (uint64, error) {
	s, err := c.bus.JetStream().Stream(ctx, bus.EventsStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// operator names who runs the command, as events record it.
func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
