package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/site"
	"github.com/drwatch/drwatch/services/arbiter"
	"github.com/drwatch/drwatch/services/dbmonitor"
	"github.com/drwatch/drwatch/services/filesync"
	"github.com/drwatch/drwatch/services/heartbeat"
	"github.com/drwatch/drwatch/services/notifier"
	"github.com/drwatch/drwatch/services/orchestrator"
)

// Services lists the services the site process runs, in start order.
func Services() []site.Service {
	return []site.Service{
		{Name: "heartbeat", Run: heartbeat.Run},
		{Name: "arbiter", Run: arbiter.Run},
		{Name: "dbmonitor", Run: dbmonitor.Run},
		{Name: "filesync", Run: filesync.Run},
		{Name: "notifier", Run: notifier.Run},
		// The site process keeps the peer source itself.
		{Name: "orchestrator", Run: orchestrator.RunInSite},
	}
}

// selectServices returns the services named in list (comma-separated), in
// start order; an empty list means all of them.
func selectServices(list string) ([]site.Service, error) {
	all := Services()
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	names := make([]string, 0, len(all))
	for _, s := range all {
		names = append(names, s.Name)
	}
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("-services: unknown service %q (known: %s)", n, strings.Join(names, ", "))
		}
		want[n] = true
	}
	var out []site.Service
	for _, s := range all {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}
