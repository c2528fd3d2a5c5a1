package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/drwatch/drwatch/pkg/config"
)

// apiCmd is seed 000's `jmp-dr api v1 config --list | --include SECTIONS`.
func apiCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	args, err := words(args, "v1", "config")
	if err != nil {
		return err
	}
	fs := newFlags("api v1 config", stderr)
	r := remoteFlags(fs)
	list := fs.Bool("list", false, "print every section")
	include := fs.String("include", "", "comma-separated sections: "+strings.Join(config.SectionNames, ","))
	if err := parse(fs, args); err != nil {
		return err
	}
	if *list == (*include != "") {
		return fmt.Errorf("%w: give exactly one of --list or --include SECTIONS", errUsage)
	}
	var names []string
	if *include != "" {
		names = strings.Split(*include, ",")
	}
	cfg, err := r.load()
	if err != nil {
		return err
	}
	// Check the names before reaching the site, so a typo never waits on
	// the network.
	if _, err := cfg.APISections(config.Runtime{}, names...); err != nil {
		return fmt.Errorf("%w: --include: %v", errUsage, err)
	}
	rt := config.Runtime{}
	if needsLog(names) {
		c, err := dial(ctx, cfg, *r.timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		p, err := c.project(ctx)
		if err != nil {
			return err
		}
		rt = p.Runtime(time.Now())
	}
	out, err := cfg.APISections(rt, names...)
	if err != nil {
		return err
	}
	return writeJSON(stdout, out)
}

// needsLog: role, failover and states come from the log; the others are
// the configuration alone and need no running site.
func needsLog(names []string) bool {
	if len(names) == 0 {
		return true
	}
	return slices.ContainsFunc(names, func(n string) bool {
		n = strings.TrimSpace(n)
		return n == "role" || n == "failover" || n == "states"
	})
}
