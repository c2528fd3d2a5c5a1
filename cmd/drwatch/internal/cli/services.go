package cli

import (
	"github.com/drwatch/drwatch/cmd/drwatch/internal/site"
	"github.com/drwatch/drwatch/services/arbiter"
	"github.com/drwatch/drwatch/services/dbmonitor"
	"github.com/drwatch/drwatch/services/filesync"
	"github.com/drwatch/drwatch/services/heartbeat"
	"github.com/drwatch/drwatch/services/notifier"
)

// Services lists the services the site process runs, in start order.
func Services() []site.Service {
	return []site.Service{
		{Name: "heartbeat", Run: heartbeat.Run},
		{Name: "arbiter", Run: arbiter.Run},
		{Name: "dbmonitor", Run: dbmonitor.Run},
		{Name: "filesync", Run: filesync.Run},
		{Name: "notifier", Run: notifier.Run},
	}
}
