// Package checker proves, from what two sites logged (and, for the chaos
// harness, what it observed of the VIP and the databases), the two promises the
// end-to-end suite and the partition fuzzer hold drwatch to: there was
// never a moment with two active sites, and no event was lost or copied
// twice between the sites' logs. It is pure: the suite gathers the facts
// (RoleChanged events from both logs, the kills it caused, VIP samples)
// and this package judges them.
package checker

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// RoleChange is one RoleChanged event as a site logged it.
type RoleChange struct {
	Site  string
	At    time.Time
	From  string
	To    string
	Epoch uint64
	// Resumed: not a change but a site restarted in the role and epoch
	// it already held (RoleConfirmed): after a Down it opens a span again,
	// and its epoch need not exceed the one it resumes.
	Resumed bool
}

// Down says a site's process stopped at At (killed, powered off): from
// then until its next RoleChange it holds no role.
type Down struct {
	Site string
	At   time.Time
}

// VIPSample is who held the VIP at one instant.
type VIPSample struct {
	At      time.Time
	Holders []string
}

// Interval is a span during which Site was active, with the epoch it
// became active in. End is zero while it still is.
type Interval struct {
	Site  string
	Epoch uint64
	Start time.Time
	End   time.Time
	// Resumed: the span is a restarted site resuming its epoch.
	Resumed bool
}

// ActiveIntervals folds role changes and downs into the spans each site
// was active. initial names the site active at the start (epoch 0), or is
// empty when none was.
func ActiveIntervals(initial string, start time.Time, changes []RoleChange, downs []Down) []Interval {
	type ev struct {
		at   time.Time
		site string
		rc   *RoleChange
	}
	var evs []ev
	for i := range changes {
		evs = append(evs, ev{changes[i].At, changes[i].Site, &changes[i]})
	}
	for _, d := range downs {
		evs = append(evs, ev{d.At, d.Site, nil})
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	open := map[string]*Interval{}
	var out []Interval
	if initial != "" {
		open[initial] = &Interval{Site: initial, Start: start}
	}
	closeIt := func(site string, at time.Time) {
		if iv := open[site]; iv != nil {
			iv.End = at
			out = append(out, *iv)
			delete(open, site)
		}
	}
	for _, e := range evs {
		switch {
		case e.rc == nil:
			closeIt(e.site, e.at)
		case e.rc.To == "active":
			if open[e.site] == nil {
				open[e.site] = &Interval{Site: e.site, Epoch: e.rc.Epoch, Start: e.at, Resumed: e.rc.Resumed}
			}
		default:
			closeIt(e.site, e.at)
		}
	}
	for _, iv := range open {
		out = append(out, *iv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// NeverTwoActive returns one line per violation: two sites' active spans
// overlapping, two sites becoming active with the same epoch, a site
// becoming active with an epoch not above its own earlier one, or a VIP
// sample with two holders. Empty means none.
//
// Epochs need not rise across sites in real time: behind a cut neither
// site can learn the other's epochs, so a later activation may carry a
// lower one. What fencing needs is that no epoch names two activations
// (drwatch's sites take disjoint epochs) and that each site's own rise.
func NeverTwoActive(ivs []Interval, samples []VIPSample) []string {
	var bad []string
	for i := range ivs {
		for j := i + 1; j < len(ivs); j++ {
			a, b := ivs[i], ivs[j]
			if a.Site == b.Site {
				continue
			}
			if overlaps(a, b) {
				bad = append(bad, fmt.Sprintf("%s (epoch %d, %s) and %s (epoch %d, %s) were active at the same time", a.Site, a.Epoch, span(a), b.Site, b.Epoch, span(b)))
			}
		}
	}
	owner := map[uint64]string{}
	lastEpoch := map[string]uint64{}
	for _, iv := range ivs {
		if iv.Epoch == 0 {
			continue
		}
		last, seen := lastEpoch[iv.Site]
		lastEpoch[iv.Site] = iv.Epoch
		if iv.Resumed && seen && last == iv.Epoch {
			continue
		}
		if o, ok := owner[iv.Epoch]; ok && o != iv.Site {
			bad = append(bad, fmt.Sprintf("%s became active at %s with epoch %d, which %s had taken before", iv.Site, iv.Start.Format(time.RFC3339Nano), iv.Epoch, o))
		}
		owner[iv.Epoch] = iv.Site
		if seen && iv.Epoch <= last {
			bad = append(bad, fmt.Sprintf("%s became active at %s with epoch %d, not above its own earlier epoch %d", iv.Site, iv.Start.Format(time.RFC3339Nano), iv.Epoch, last))
		}
	}
	for _, s := range samples {
		if len(s.Holders) > 1 {
			bad = append(bad, fmt.Sprintf("the VIP was held by %s at %s", strings.Join(s.Holders, " and "), s.At.Format(time.RFC3339Nano)))
		}
	}
	return bad
}

func overlaps(a, b Interval) bool {
	aEnd, bEnd := a.End, b.End
	far := time.Unix(1<<40, 0)
	if aEnd.IsZero() {
		aEnd = far
	}
	if bEnd.IsZero() {
		bEnd = far
	}
	return a.Start.Before(bEnd) && b.Start.Before(aEnd)
}

func span(iv Interval) string {
	end := "now"
	if !iv.End.IsZero() {
		end = iv.End.Format("15:04:05.000")
	}
	return iv.Start.Format("15:04:05.000") + "–" + end
}

// NothingLost compares a site's own events (ids in the order of its log)
// with the copy its peer sourced: the copy must hold every one of them,
// once, in the same order. It returns one line per problem.
func NothingLost(site string, own, peerCopy []string) []string {
	var bad []string
	seen := map[string]int{}
	for _, id := range peerCopy {
		seen[id]++
	}
	for id, n := range seen {
		if n > 1 {
			bad = append(bad, fmt.Sprintf("site %s's event %s is in the peer's copy %d times", site, id, n))
		}
	}
	var missing []string
	for _, id := range own {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		bad = append(bad, fmt.Sprintf("%d of site %s's %d events never reached the peer (first: %s)", len(missing), site, len(own), missing[0]))
	}
	ownSet := map[string]bool{}
	for _, id := range own {
		ownSet[id] = true
	}
	var copyOrder []string
	for _, id := range peerCopy {
		if ownSet[id] {
			copyOrder = append(copyOrder, id)
		} else {
			bad = append(bad, fmt.Sprintf("the peer's copy of site %s holds %s, which site %s never logged", site, id, site))
		}
	}
	if len(missing) == 0 && !slices.Equal(slices.Compact(copyOrder), own) {
		bad = append(bad, fmt.Sprintf("the peer's copy of site %s is out of order", site))
	}
	sort.Strings(bad)
	return bad
}

// Observation is what a harness saw of the pair at one instant from
// outside drwatch: which sites held the VIP and whose database accepted
// writes. A site whose database did not answer is in neither list.
type Observation struct {
	At       time.Time
	VIP      []string
	Writable []string
}

// StartAtWritable moves each span's start back to the first observation,
// after that site's previous span ended, at which its database was
// writable or it held the VIP. RoleChanged is logged after the promotion
// and the VIP, so a span that starts there misses the moments a client
// could already write to the new active. Spans keep their ends and order.
func StartAtWritable(ivs []Interval, obs []Observation) []Interval {
	out := slices.Clone(ivs)
	prevEnd := map[string]time.Time{}
	for i := range out {
		iv := &out[i]
		from := prevEnd[iv.Site]
		for _, o := range obs {
			if !o.At.After(from) || !o.At.Before(iv.Start) {
				continue
			}
			if slices.Contains(o.Writable, iv.Site) || slices.Contains(o.VIP, iv.Site) {
				iv.Start = o.At
				break
			}
		}
		prevEnd[iv.Site] = iv.End
		if iv.End.IsZero() {
			prevEnd[iv.Site] = time.Unix(1<<40, 0)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// NeverTwoActiveObserved is NeverTwoActive over the spans started at the
// first writable moment (StartAtWritable), plus what the observations
// show on their own: two writable databases or two VIP holders at one
// instant, and a site writable or holding the VIP while the other site's
// span is open. Consecutive observations of one kind of violation are
// reported once, with the first and last instant and how many there were.
func NeverTwoActiveObserved(ivs []Interval, obs []Observation) []string {
	bad := NeverTwoActive(StartAtWritable(ivs, obs), nil)
	type episode struct {
		first, last time.Time
		n           int
	}
	var order, lines []string
	eps := map[string]*episode{}
	open := map[string]bool{}
	note := func(key string, at time.Time) {
		open[key] = true
		if e := eps[key]; e != nil && e.n > 0 {
			e.last, e.n = at, e.n+1
			return
		}
		eps[key] = &episode{first: at, last: at, n: 1}
		order = append(order, key)
	}
	flush := func(key string) {
		e := eps[key]
		lines = append(lines, fmt.Sprintf("%s from %s to %s (%d observations)", key, e.first.Format(time.RFC3339Nano), e.last.Format(time.RFC3339Nano), e.n))
		e.n = 0
	}
	for _, o := range obs {
		seen := map[string]bool{}
		if len(o.Writable) > 1 {
			seen["the databases of "+strings.Join(o.Writable, " and ")+" were writable at once"] = true
		}
		if len(o.VIP) > 1 {
			seen["the VIP was held by "+strings.Join(o.VIP, " and ")] = true
		}
		for _, iv := range ivs {
			if o.At.Before(iv.Start) || (!iv.End.IsZero() && !o.At.Before(iv.End)) {
				continue
			}
			for _, w := range o.Writable {
				if w != iv.Site {
					seen[fmt.Sprintf("site %s's database was writable while %s was active (epoch %d)", w, iv.Site, iv.Epoch)] = true
				}
			}
			for _, h := range o.VIP {
				if h != iv.Site {
					seen[fmt.Sprintf("site %s held the VIP while %s was active (epoch %d)", h, iv.Site, iv.Epoch)] = true
				}
			}
		}
		for key := range seen {
			note(key, o.At)
		}
		for key := range open {
			if !seen[key] {
				flush(key)
				delete(open, key)
			}
		}
	}
	for _, key := range order {
		if open[key] {
			flush(key)
			delete(open, key)
		}
	}
	sort.Strings(lines)
	return append(bad, lines...)
}
