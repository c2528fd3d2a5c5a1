package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/status"
	"github.com/drwatch/drwatch/pkg/config"
)

// configFlag is -config with $DRWATCH_CONFIG as the default when set.
func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("DRWATCH_CONFIG")
	if def == "" {
		def = "/etc/drwatch/site.yaml"
	}
	return fs.String("config", def, "site configuration file (default $DRWATCH_CONFIG or /etc/drwatch/site.yaml)")
}

// remote holds the flags of every command that talks to a running site.
type remote struct {
	cfgPath *string
	timeout *time.Duration
}

func remoteFlags(fs *flag.FlagSet) *remote {
	return &remote{
		cfgPath: configFlag(fs),
		timeout: fs.Duration("connect-timeout", 5*time.Second, "how long to try to reach the site's NATS"),
	}
}

func (r *remote) load() (*config.Config, error) { return config.Load(*r.cfgPath) }

// dial loads the config and connects to its site.
func (r *remote) dial(ctx context.Context) (*config.Config, *client, error) {
	cfg, err := r.load()
	if err != nil {
		return nil, nil, err
	}
	c, err := dial(ctx, cfg, *r.timeout)
	if err != nil {
		return nil, nil, err
	}
	return cfg, c, nil
}

// project replays the site's log.
func (c *client) project(ctx context.Context) (*status.Projection, error) {
	p, err := status.Load(ctx, c.bus, c.cfg)
	if err != nil {
		return nil, fmt.Errorf("read the log: %w", err)
	}
	return p, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
