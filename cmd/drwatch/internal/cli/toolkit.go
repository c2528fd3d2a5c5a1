package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/drwatch/drwatch/pkg/config"
	"github.com/drwatch/drwatch/pkg/events"
)

func toolkitCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) >= 2 && args[0] == "config" && args[1] == "update" {
		return configUpdateCmd(ctx, args[2:], stdout, stderr)
	}
	if len(args) >= 2 && args[0] == "watchdog" && args[1] == "status" {
		return watchdogCmd(ctx, args[2:], stdout, stderr)
	}
	return fmt.Errorf("%w: toolkit takes `config update` or `watchdog status`", errUsage)
}

// loadHashed reads, validates and digests a config file.
func loadHashed(path string) (*config.Config, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("open config: %w", err)
	}
	cfg, err := config.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	return cfg, hex.EncodeToString(sum[:]), nil
}

// sectionDigests hashes each configuration section's rendering (secrets
// masked), the baseline for "what changed".
func sectionDigests(cfg *config.Config) (map[string]string, error) {
	var names []string
	for _, n := range config.SectionNames {
		if n != "role" && n != "failover" && n != "states" {
			names = append(names, n)
		}
	}
	secs, err := cfg.APISections(config.Runtime{}, names...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(secs))
	for name, v := range secs {
		data, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		out[name] = hex.EncodeToString(sum[:])
	}
	return out, nil
}

// configUpdateCmd is seed 000's `toolkit config update`: the file is
// validated first (a bad file changes nothing), then a ConfigUpdated is
// recorded; the running site process restarts its services on the file
// when its digest differs from the one it runs.
func configUpdateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("toolkit config update", stderr)
	r := remoteFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	path, err := filepath.Abs(*r.cfgPath)
	if err != nil {
		return err
	}
	cfg, sum, err := loadHashed(path)
	if err != nil {
		return fmt.Errorf("not updated: %w", err)
	}
	digests, err := sectionDigests(cfg)
	if err != nil {
		return err
	}
	c, err := dial(ctx, cfg, *r.timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	var last *events.ConfigUpdated
	if _, err := c.bus.Replay(ctx, 0, []string{events.SiteTypeFilter(events.SiteID(cfg.Site.Name), "ConfigUpdated")}, func(_ uint64, env *events.Envelope) error {
		ev, err := events.DecodeInto[events.ConfigUpdated](env)
		if err == nil {
			last = &ev
		}
		return nil
	}); err != nil {
		return fmt.Errorf("read the log: %w", err)
	}
	if last != nil && last.SHA256 == sum {
		fmt.Fprintf(stdout, "%s: valid, unchanged since the last update (sha256 %s); nothing recorded\n", path, sum[:12])
		return nil
	}
	var changed []string
	if last != nil {
		for name, d := range digests {
			if last.Sections[name] != d {
				changed = append(changed, name)
			}
		}
		slices.Sort(changed)
	}
	ev := events.ConfigUpdated{Path: path, SHA256: sum, Changed: changed, Sections: digests, By: operator()}
	if _, err := c.bus.Publish(ctx, ev, nil); err != nil {
		return fmt.Errorf("record the update: %w", err)
	}
	what := "first recorded configuration"
	if last != nil {
		what = "changed sections: none visible (secrets or drwatch-only settings)"
		if len(changed) > 0 {
			what = fmt.Sprintf("changed sections: %v", changed)
		}
	}
	fmt.Fprintf(stdout, "%s: valid; update recorded (sha256 %s, %s); site %s reloads its services when it runs another file\n", path, sum[:12], what, cfg.Site.Name)
	return nil
}
