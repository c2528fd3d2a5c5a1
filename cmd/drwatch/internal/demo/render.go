package demo

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/drwatch/drwatch/cmd/drwatch/internal/status"
)

// printer writes the story's lines and a status block below them. On a
// terminal the block is redrawn in place every second; elsewhere (a pipe,
// a test) every block is printed, so the output is a plain log.
type printer struct {
	w     io.Writer
	tty   bool
	shown int // lines of the status block on screen
}

func newPrinter(w io.Writer) *printer {
	p := &printer{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *printer) erase() {
	if p.tty && p.shown > 0 {
		fmt.Fprintf(p.w, "\033[%dA\033[J", p.shown)
	}
	p.shown = 0
}

// say prints a story line above the status block.
func (p *printer) say(line string) {
	p.erase()
	fmt.Fprintln(p.w, line)
}

// status draws the block.
func (p *printer) status(block string) {
	p.erase()
	fmt.Fprint(p.w, block)
	if p.tty {
		p.shown = strings.Count(block, "\n")
	}
}

// done leaves the last block on screen.
func (p *printer) done() { p.shown = 0 }

// renderStatus is one status block: each site's role, epoch, heartbeat,
// last arbitration and VIP, then the client.
func renderStatus(elapsed time.Duration, t *Topology, w *watcher, c *Client) string {
	var b strings.Builder
	for i, name := range Sites {
		s, fromPeer := w.view(name)
		prefix := fmt.Sprintf("%6.1fs", elapsed.Seconds())
		if i > 0 {
			prefix = strings.Repeat(" ", len(prefix))
		}
		role := string(s.Role)
		if !t.Site(name).Running() {
			role = "OFF (last " + role + ")"
		} else if fromPeer {
			role += "?"
		}
		vip := "-"
		if t.Site(name).VIP.IsHeld() {
			vip = "HELD"
		}
		fmt.Fprintf(&b, "%s  site %s  %-20s epoch %-3d heartbeat %-5s arbiters with a session from it %d/%d  %-44s VIP %s\n",
			prefix, name, role, s.Epoch, heartbeat(s), t.ManagedBy(name), len(t.Arbiters), arbitration(s.Arbitration), vip)
	}
	st := c.Stats()
	fmt.Fprintf(&b, "         client  %d writes acknowledged (a %d, b %d), %d reconnects\n", st.Acked, st.BySite["a"], st.BySite["b"], st.Reconnects)
	return b.String()
}

func heartbeat(s status.Site) string {
	if noLineDown(s) {
		return "up"
	}
	return "DOWN"
}

func arbitration(a *status.Arbitration) string {
	if a == nil {
		return "arbitration -"
	}
	return fmt.Sprintf("arbitration %s: r=%d m=%d u=%d of %d (%s)", a.Action, a.Reachable, a.Managed, a.Unreachable, a.N, a.Branch)
}
