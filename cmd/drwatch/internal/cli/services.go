package cli

import "github.com/drwatch/drwatch/cmd/drwatch/internal/site"

// Services lists the services the site process runs, in start order.
func Services() []site.Service {
	return []site.Service{}
}
