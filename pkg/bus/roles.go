package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/drwatch/drwatch/pkg/events"
)

// durableTypes are the event types RolesStream keeps: the roles and the
// pair-wide switches (automatic failover, maintenance), which must outlive
// the log's retention as long as they are in force.
var durableTypes = []events.Type{"RoleChanged", "AutomaticFailoverChanged", "MaintenanceChanged"}

// durableFilters are the subjects RolesStream keeps: per type, this site's
// and the peer's.
func (b *Bus) durableFilters() []string {
	sites := []events.SiteID{b.src.Site}
	if b.peer != "" {
		sites = append(sites, b.peer)
	}
	var f []string
	for _, t := range durableTypes {
		for _, s := range sites {
			f = append(f, events.SiteTypeFilter(s, t))
		}
	}
	return f
}

// RolesConfig is the site's RolesStream: file storage, no MaxAge, one
// message per subject, sourced from EVENTS through durableFilters. A new
// ROLES (an upgrade) starts from the first event EVENTS still holds.
func (b *Bus) RolesConfig() jetstream.StreamConfig {
	var trs []jetstream.SubjectTransformConfig
	for _, f := range b.durableFilters() {
		trs = append(trs, jetstream.SubjectTransformConfig{Source: f})
	}
	return jetstream.StreamConfig{
		Name:              RolesStream,
		Description:       "latest role of each site of the pair and the pair-wide switches, kept beyond the log's retention",
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: 1,
		Replicas:          b.repl,
		Sources:           []*jetstream.StreamSource{{Name: EventsStream, SubjectTransforms: trs}},
	}
}

// Fact is the latest event of one durable subject (a site's role, say) in
// a site's store.
type Fact struct {
	Env *events.Envelope
	// InLog: the site's log (EVENTS) still holds the subject, so a replay
	// of the log — or the peer source of the other site — carries this
	// event too. Otherwise retention took it and only RolesStream has it.
	InLog bool
}

// Facts returns the site's durable facts in log order: first those the
// log no longer holds (from RolesStream), then those it does (from the
// log itself, the newest copy). A projection applies the facts not InLog
// before it replays the log; together they give what the whole history
// would. An empty store has none.
func (b *Bus) Facts(ctx context.Context) ([]Fact, error) {
	return facts(ctx, b.js, b.durableFilters())
}

// peerAnswerTimeout bounds PeerFacts: the peer's JetStream answers over
// the leafnode within milliseconds, or there is no link.
const peerAnswerTimeout = 2 * time.Second

// PeerFacts is Facts of the peer's store, read over the peer's JetStream
// domain across the leafnode link. An error means the peer did not answer:
// nothing is known of its store.
func (b *Bus) PeerFacts(ctx context.Context) ([]Fact, error) {
	if b.peer == "" {
		return nil, errors.New("peer facts: this bus has no peer")
	}
	js, err := jetstream.NewWithDomain(b.nc, string(b.peer))
	if err != nil {
		return nil, fmt.Errorf("peer facts: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, peerAnswerTimeout)
	defer cancel()
	f, err := facts(ctx, js, b.durableFilters())
	if err != nil {
		return nil, fmt.Errorf("peer facts of %s: %w", b.peer, err)
	}
	return f, nil
}

func facts(ctx context.Context, js jetstream.JetStream, filters []string) ([]Fact, error) {
	log, err := optionalStream(ctx, js, EventsStream)
	if err != nil {
		return nil, err
	}
	// A store from before RolesStream has only its log.
	roles, err := optionalStream(ctx, js, RolesStream)
	if err != nil {
		return nil, err
	}
	// The filters catch what the log holds and RolesStream has not copied
	// yet; RolesStream's own subjects catch what it keeps whatever sites
	// this bus knows.
	subjects := slices.Clone(filters)
	if roles != nil {
		info, err := roles.Info(ctx, jetstream.WithSubjectFilter(">"))
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", RolesStream, err)
		}
		for subj := range info.State.Subjects {
			subjects = append(subjects, subj)
		}
	}
	type key struct {
		inLog bool
		seq   uint64
	}
	seen := map[key]Fact{}
	for _, subj := range subjects {
		// Retention removes the oldest events first: while the log holds
		// any of a subject, its latest is there, newer than RolesStream's
		// copy may yet be.
		m, err := lastFor(ctx, log, subj)
		inLog := m != nil
		if err == nil && m == nil {
			m, err = lastFor(ctx, roles, subj)
		}
		if err != nil {
			return nil, fmt.Errorf("latest %s: %w", subj, err)
		}
		if m == nil {
			continue
		}
		k := key{inLog, m.Sequence}
		if _, ok := seen[k]; ok {
			continue
		}
		env, err := decodeMsg(m.Subject, m.Data)
		if err != nil {
			// Not a fact: an envelope that contradicts its subject
			// (or does not decode) is skipped, as Replay skips it.
			continue
		}
		seen[k] = Fact{Env: env, InLog: inLog}
	}
	keys := slices.SortedFunc(maps.Keys(seen), func(x, y key) int {
		if x.inLog != y.inLog {
			if x.inLog {
				return 1
			}
			return -1
		}
		return cmp.Compare(x.seq, y.seq)
	})
	out := make([]Fact, len(keys))
	for i, k := range keys {
		out[i] = seen[k]
	}
	return out, nil
}

// outlived are the facts the log no longer holds, oldest first, matching
// filters (none: all): what Replay delivers before the log.
func (b *Bus) outlived(ctx context.Context, filters []string) ([]*events.Envelope, error) {
	fs, err := b.Facts(ctx)
	if err != nil {
		return nil, err
	}
	var out []*events.Envelope
	for _, f := range fs {
		if f.InLog {
			continue
		}
		subj := events.Subject(f.Env)
		if len(filters) == 0 || slices.ContainsFunc(filters, func(flt string) bool { return subjectMatches(flt, subj) }) {
			out = append(out, f.Env)
		}
	}
	return out, nil
}

// subjectMatches reports whether subject matches filter, with NATS
// wildcards: "*" one token, ">" the rest.
func subjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return len(st) > i
		}
		if i >= len(st) || (f != "*" && f != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}

// optionalStream is the stream, or nil when the store has none.
func optionalStream(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return s, nil
}

// lastFor is the stream's last message matching filter, nil when it has
// none (or there is no stream).
func lastFor(ctx context.Context, s jetstream.Stream, filter string) (*jetstream.RawStreamMsg, error) {
	if s == nil {
		return nil, nil
	}
	m, err := s.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return m, err
}
