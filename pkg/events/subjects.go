package events

import (
	"fmt"
	"strings"
)

// Subject scheme. Each site publishes only under its own prefix, so a
// subject is captured by exactly one site's stream; the peer's events reach
// a site's log by sourcing, never by a second capture.
//
//	drwatch.<site>.evt.<service>.<Type>    events
//	drwatch.<site>.poison.<consumer>       undecodable or invalid messages kept for inspection
const (
	subjectRoot = "drwatch"
)

// Subject returns the subject an envelope is published on.
func Subject(env *Envelope) string {
	return fmt.Sprintf("%s.%s.evt.%s.%s", subjectRoot, env.Site, env.Service, env.Type)
}

// SiteEvents matches every event a site publishes.
func SiteEvents(site SiteID) string {
	return fmt.Sprintf("%s.%s.evt.>", subjectRoot, site)
}

// TypeFilter matches events of type t from any site and service.
func TypeFilter(t Type) string {
	return fmt.Sprintf("%s.*.evt.*.%s", subjectRoot, t)
}

// SiteTypeFilter matches events of type t published by site.
func SiteTypeFilter(site SiteID, t Type) string {
	return fmt.Sprintf("%s.%s.evt.*.%s", subjectRoot, site, t)
}

// PoisonSubject is where a consumer parks a message it cannot process.
func PoisonSubject(site SiteID, consumer string) string {
	return fmt.Sprintf("%s.%s.poison.%s", subjectRoot, site, consumer)
}

// SitePoison matches every poison subject of a site.
func SitePoison(site SiteID) string {
	return fmt.Sprintf("%s.%s.poison.>", subjectRoot, site)
}

// ParseSubject splits an event subject into site, service and type.
func ParseSubject(subject string) (site SiteID, service string, t Type, err error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 5 || parts[0] != subjectRoot || parts[2] != "evt" {
		return "", "", "", fmt.Errorf("%w: subject %q is not drwatch.<site>.evt.<service>.<type>", ErrUndecodable, subject)
	}
	return SiteID(parts[1]), parts[3], Type(parts[4]), nil
}

// CheckSubject verifies that an envelope read from subject says what the
// subject says: its site, service and type. The server's permissions
// decide who may publish on a subject, not what the payload claims, so a
// consumer trusts the envelope only when the two agree.
func CheckSubject(subject string, env *Envelope) error {
	site, service, t, err := ParseSubject(subject)
	if err != nil {
		return err
	}
	switch {
	case env.Site != site:
		return fmt.Errorf("%w: envelope %s claims site %q but was published on %s (site %q)", ErrInvalid, env.ID, env.Site, subject, site)
	case env.Service != service:
		return fmt.Errorf("%w: envelope %s claims service %q but was published on %s (service %q)", ErrInvalid, env.ID, env.Service, subject, service)
	case env.Type != t:
		return fmt.Errorf("%w: envelope %s claims type %q but was published on %s (type %q)", ErrInvalid, env.ID, env.Type, subject, t)
	}
	return nil
}
