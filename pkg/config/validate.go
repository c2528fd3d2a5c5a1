package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid marks a configuration that fails validation. The joined errors
// each name the field, the value and what would fix it.
var ErrInvalid = errors.New("invalid configuration")

var siteNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
}

// Validate checks every field and the timings against each other. It
// returns every problem at once, joined, wrapped in ErrInvalid.
func (c *Config) Validate() error {
	var p problems
	c.validateSite(&p)
	c.validateNATS(&p)
	c.validateCore(&p)
	c.validateDatabases(&p)
	c.validateFile(&p)
	c.validateWatchdog(&p)
	c.validateFailover(&p)
	if len(p) == 0 {
		// The figures are derived from the fields checked above; with
		// any of them wrong they would only repeat the problem.
		c.validateTiming(&p)
	}
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n%w", ErrInvalid, errors.Join(p...))
}

func (c *Config) validateSite(p *problems) {
	switch {
	case c.Site.Name == "":
		p.add("site.name", "is required (a short name such as a or paris)")
	case !siteNameRE.MatchString(c.Site.Name):
		p.add("site.name", "%q must be lower-case letters, digits or '-', starting with a letter, at most 32 characters", c.Site.Name)
	}
	switch {
	case c.Site.Peer == "":
		p.add("site.peer", "is required (the other site's name)")
	case !siteNameRE.MatchString(c.Site.Peer):
		p.add("site.peer", "%q must be lower-case letters, digits or '-', starting with a letter, at most 32 characters", c.Site.Peer)
	case c.Site.Peer == c.Site.Name:
		p.add("site.peer", "%q is this site's own name; name the other site", c.Site.Peer)
	}
	if !slices.Contains([]string{"active", "standby", "standalone"}, c.Site.Role) {
		p.add("site.role", "%q must be active, standby or standalone", c.Site.Role)
	}
	for _, l := range []struct {
		field string
		addrs List
	}{{"site.peerAddresses", c.Site.PeerAddresses}, {"site.addresses", c.Site.Addresses}} {
		for i, a := range l.addrs {
			if _, err := netip.ParseAddr(a); err != nil {
				p.add(fmt.Sprintf("%s[%d]", l.field, i), "%q is not an IP address", a)
			}
		}
	}
}

func (c *Config) validateNATS(p *problems) {
	if c.NATS.URL != "" {
		if !strings.Contains(c.NATS.URL, "://") {
			p.add("nats.url", "%q must be a URL such as nats://10.0.0.5:4222", c.NATS.URL)
		}
		return
	}
	e := c.NATS.Embedded
	if e.Port < -1 || e.Port > 65535 {
		p.add("nats.embedded.port", "%d must be 0-65535 (-1 picks a free port)", e.Port)
	}
	if e.StoreDir == "" {
		p.add("nats.embedded.storeDir", "is required for the embedded server (JetStream keeps the log there)")
	}
	if l := e.Leafnode.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			p.add("nats.embedded.leafnode.listen", "%q must be host:port", l)
		}
	}
	for i, r := range e.Leafnode.Remotes {
		if !strings.Contains(r, "://") {
			p.add(fmt.Sprintf("nats.embedded.leafnode.remotes[%d]", i), "%q must be a URL such as nats-leaf://10.0.0.6:7422", r)
		}
	}
	validateTLS(p, "nats.embedded.leafnode.tls", e.Leafnode.TLS)
}

func validateTLS(p *problems, field string, t TLS) {
	if (t.Cert == "") != (t.Key == "") {
		p.add(field, "cert and key must be set together")
	}
}

func (c *Config) validateCore(p *problems) {
	if c.Core.PeerVIP != "" {
		checkHost(p, "core.peerVip", c.Core.PeerVIP)
	}
	for i, n := range c.Core.PeerLoadBalancerNodes {
		checkHost(p, fmt.Sprintf("core.peerLoadBalancerNodes[%d]", i), n)
	}
	if c.Core.SCPTimeout.D() <= 0 {
		p.add("core.scpTimeout", "must be positive (seed default 120s)")
	}
	if c.VIP.Address != "" {
		if _, err := netip.ParsePrefix(c.VIP.Address); err != nil {
			p.add("vip.address", "%q must be an address with prefix length, e.g. 10.0.0.10/24", c.VIP.Address)
		}
		if c.VIP.Interface == "" {
			p.add("vip.interface", "is required when vip.address is set")
		}
	}
}

func checkHost(p *problems, field, host string) {
	if host == "" || strings.ContainsAny(host, " /,") {
		p.add(field, "%q must be an IP address or host name", host)
	}
}

func (c *Config) validateDatabases(p *problems) {
	if c.MySQL.Enabled {
		if !c.MySQL.DSN.IsSet() {
			p.add("mysql.dsn", "is required when mysql.enabled is true")
		}
		checkInterval(p, "mysql.checkInterval", c.MySQL.CheckInterval)
		if c.MySQL.RepairAttempts < 0 {
			p.add("mysql.repairAttempts", "%d must be 0 or more", c.MySQL.RepairAttempts)
		}
		validateTLS(p, "mysql.tls", c.MySQL.TLS)
		if !strings.HasPrefix(c.MySQL.KeepDir, "/") {
			p.add("mysql.keepDir", "%q must be an absolute path (a resync dumps the replica's databases there before dropping them; default /var/lib/drwatch/kept)", c.MySQL.KeepDir)
		}
	}
	if c.PgSQL.Enabled {
		if !c.PgSQL.DSN.IsSet() {
			p.add("pgsql.dsn", "is required when pgsql.enabled is true")
		}
		checkInterval(p, "pgsql.checkInterval", c.PgSQL.CheckInterval)
		if c.PgSQL.LagThresholdBytes < 0 {
			p.add("pgsql.lagThresholdBytes", "%d must be 0 or more", c.PgSQL.LagThresholdBytes)
		}
		if c.PgSQL.RepairAttempts < 0 {
			p.add("pgsql.repairAttempts", "%d must be 0 or more", c.PgSQL.RepairAttempts)
		}
		validateTLS(p, "pgsql.tls", c.PgSQL.TLS)
		if c.PgSQL.DataDir != "" && !strings.HasPrefix(c.PgSQL.DataDir, "/") {
			p.add("pgsql.dataDir", "%q must be an absolute path", c.PgSQL.DataDir)
		}
		if c.PgSQL.DataDir != "" && c.PgSQL.OSUser == "" {
			p.add("pgsql.osUser", "is required when pgsql.dataDir is set (the owner of the data directory, usually postgres)")
		}
	}
}

func checkInterval(p *problems, field string, d Duration) {
	if d.D() <= 0 {
		p.add(field, "must be positive")
	}
}

func (c *Config) validateFile(p *problems) {
	if c.File.Backup.MaxCount < 1 {
		p.add("file.backup.maxCount", "%d must be at least 1 (seed default 3)", c.File.Backup.MaxCount)
	}
	checkSchedule(p, "file.backup.hoursOfDay", c.File.Backup.HoursOfDay, 0, 23)
	checkSchedule(p, "file.backup.daysOfWeek", c.File.Backup.DaysOfWeek, 0, 6)
	checkSchedule(p, "file.restore.hoursOfDay", c.File.Restore.HoursOfDay, 0, 23)
	checkSchedule(p, "file.restore.daysOfWeek", c.File.Restore.DaysOfWeek, 0, 6)
	if !slices.Contains([]string{"objectstore", "sftp"}, c.File.Transport) {
		p.add("file.transport", "%q must be objectstore or sftp", c.File.Transport)
	}
	if len(c.File.Paths) > 0 && c.File.Dir == "" {
		p.add("file.dir", "is required when file.paths is set")
	}
	if c.File.Transport == "sftp" {
		s := c.File.SFTP
		if s.Host == "" {
			p.add("file.sftp.host", "is required when file.transport is sftp (the peer's SSH address)")
		}
		if s.Port < 1 || s.Port > 65535 {
			p.add("file.sftp.port", "%d must be 1-65535 (default 22)", s.Port)
		}
		if s.Username == "" {
			p.add("file.sftp.username", "is required when file.transport is sftp")
		}
		if s.KnownHosts == "" {
			p.add("file.sftp.knownHosts", "is required when file.transport is sftp: the peer's host key must be verified")
		}
		if s.PrivateKey == "" && !s.Password.IsSet() {
			p.add("file.sftp.privateKey", "set privateKey or password when file.transport is sftp")
		}
	}
}

// ParseSchedule reads a seed 000 schedule field: "*" (every value) or a
// comma-separated list of numbers and ranges such as "1,3,20-23". It
// returns the set of allowed values in [lo, hi].
func ParseSchedule(s string, lo, hi int) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "*" || s == "" {
		all := make([]int, 0, hi-lo+1)
		for v := lo; v <= hi; v++ {
			all = append(all, v)
		}
		return all, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		from, to, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(from)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number, a range like 1-5, or *", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(to); err != nil {
				return nil, fmt.Errorf("%q is not a number, a range like 1-5, or *", part)
			}
		}
		if a < lo || b > hi || a > b {
			return nil, fmt.Errorf("%q is outside %d-%d", part, lo, hi)
		}
		for v := a; v <= b; v++ {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func checkSchedule(p *problems, field, s string, lo, hi int) {
	if _, err := ParseSchedule(s, lo, hi); err != nil {
		p.add(field, "%v", err)
	}
}

func (c *Config) validateWatchdog(p *problems) {
	hb := c.Watchdog.Heartbeat
	if hb.Interval.D() <= 0 {
		p.add("watchdog.heartbeat.interval", "must be positive (seed default 30s)")
	} else if hb.Interval.D() > time.Hour {
		p.add("watchdog.heartbeat.interval", "%s is longer than an hour; a lost peer would go unnoticed that long (seed default 30s)", hb.Interval.D())
	}
	if hb.Timeout.D() <= 0 {
		p.add("watchdog.heartbeat.timeout", "must be positive (seed default 5s)")
	} else if hb.Timeout.D() >= hb.Interval.D() {
		p.add("watchdog.heartbeat.timeout", "must be less than interval (%s >= %s)", hb.Timeout.D(), hb.Interval.D())
	}
	if hb.Retries < 0 || hb.Retries > 100 {
		p.add("watchdog.heartbeat.retries", "%d must be 0-100 (seed default 4)", hb.Retries)
	}
	checkProbe(p, "watchdog.heartbeat", hb.Probe, hb.Port)
	names := map[string]bool{}
	for i, l := range hb.Lines {
		f := fmt.Sprintf("watchdog.heartbeat.lines[%d]", i)
		if l.Name == "" || names[l.Name] {
			p.add(f+".name", "%q must be set and unique", l.Name)
		}
		names[l.Name] = true
		if l.VIP == "" && len(l.Nodes) == 0 {
			p.add(f, "needs a vip or nodes to probe")
		}
		probe := l.Probe
		if probe == "" {
			probe = hb.Probe
		}
		port := l.Port
		if port == 0 {
			port = hb.Port
		}
		checkProbe(p, f, probe, port)
	}

	n := c.Watchdog.Notification
	if n.Interval.D() <= 0 {
		p.add("watchdog.notification.interval", "must be positive (seed default 3600s)")
	}
	for i, e := range n.Email {
		if !strings.Contains(e, "@") {
			p.add(fmt.Sprintf("watchdog.notification.email[%d]", i), "%q is not an e-mail address", e)
		}
	}
	if len(n.Email) > 0 && n.SMTP.Host == "" {
		p.add("watchdog.notification.smtp.host", "is required when watchdog.notification.email is set")
	}
	if !slices.Contains([]string{"starttls", "tls", "none"}, n.SMTP.Security) {
		p.add("watchdog.notification.smtp.security", "%q must be starttls, tls or none", n.SMTP.Security)
	}
	if n.SMTP.Port < 1 || n.SMTP.Port > 65535 {
		p.add("watchdog.notification.smtp.port", "%d must be 1-65535", n.SMTP.Port)
	}

	fd := c.Watchdog.FailureDetection
	t := fd.Threshold
	for _, s := range []struct {
		name string
		v    float64
	}{{"failover", t.Failover}, {"adjustManaged", t.AdjustManaged}, {"warning", t.Warning}} {
		// Every comparison with NaN is false, so a NaN share would pass
		// the range check below and then no share would ever be below it.
		switch {
		case math.IsNaN(s.v) || math.IsInf(s.v, 0):
			p.add("watchdog.failureDetection.threshold."+s.name, "%g is not a number; a share is between 0 and 1, e.g. 0.5", s.v)
		case s.v < 0 || s.v > 1:
			p.add("watchdog.failureDetection.threshold."+s.name, "%g must be a share between 0 and 1", s.v)
		}
	}
	if t.Failover == 0 {
		// Nothing is below 0: the active would stay active with no
		// arbiter left and the standby would never take over, with
		// failover.automatic still saying true.
		p.add("watchdog.failureDetection.threshold.failover", "0 would never fence an isolated active nor promote the standby; set a share such as 0.5, and failover.automatic: false to keep failover manual")
	}
	if t.AdjustManaged > t.Failover {
		p.add("watchdog.failureDetection.threshold.adjustManaged", "%g must not exceed failover %g (seed 000)", t.AdjustManaged, t.Failover)
	}
	if fd.IsCustom && fd.Script == "" {
		p.add("watchdog.failureDetection.script", "is required when isCustom is true")
	}
	if fd.ScriptTimeout.D() <= 0 {
		p.add("watchdog.failureDetection.scriptTimeout", "must be positive")
	} else if fd.ScriptTimeout.D() > time.Hour {
		p.add("watchdog.failureDetection.scriptTimeout", "%s is longer than an hour; a hung script would hold an isolated active's self-fence that long (seed default 30s)", fd.ScriptTimeout.D())
	}
	if fd.ArbiterSessionTimeout.D() <= 0 {
		p.add("watchdog.failureDetection.arbiterSessionTimeout", "must be positive: set the arbiters' sshd ClientAliveInterval × ClientAliveCountMax (default 30s, 10 × 3)")
	}
	if fd.WaitDuration.D() < 0 {
		p.add("watchdog.failureDetection.waitDuration", "must not be negative (seed default 8h)")
	}
	if fd.ProbeTimeout.D() <= 0 {
		p.add("watchdog.failureDetection.probeTimeout", "must be positive")
	} else if fd.ProbeTimeout.D() > hb.Interval.D() && hb.Interval.D() > 0 {
		p.add("watchdog.failureDetection.probeTimeout", "must not exceed watchdog.heartbeat.interval (%s > %s)", fd.ProbeTimeout.D(), hb.Interval.D())
	}
	if !slices.Contains([]string{"icmp", "tcp"}, fd.ArbiterProbe) {
		p.add("watchdog.failureDetection.arbiterProbe", "%q must be icmp or tcp", fd.ArbiterProbe)
	}
	if len(fd.Arbiters) > 1000 {
		p.add("watchdog.failureDetection.arbiters", "%d arbiters is more than 1000", len(fd.Arbiters))
	}
	// An arbiter listed twice counts twice in every share: one device
	// would weigh as two in the verdict and in a claim.
	seen := map[string]int{}
	for i, a := range fd.Arbiters {
		f := fmt.Sprintf("watchdog.failureDetection.arbiters[%d]", i)
		k := arbiterKey(a)
		if j, ok := seen[k]; ok {
			p.add(f, "%s is arbiters[%d] again (same host and port); an arbiter listed twice counts twice in every share: remove one", net.JoinHostPort(a.Host, strconv.Itoa(arbiterPort(a))), j)
		} else {
			seen[k] = i
		}
		checkHost(p, f+".host", a.Host)
		if a.Port < 1 || a.Port > 65535 {
			p.add(f+".port", "%d must be 1-65535", a.Port)
		}
		if a.Username == "" {
			p.add(f+".username", "is required")
		}
		if !a.Password.IsSet() && a.PrivateKey == "" {
			p.add(f, "needs a password or a privateKey")
		}
		if a.KnownHosts == "" {
			p.add(f+".knownHosts", "is required: arbiter host keys are always verified")
		}
	}
	for i, m := range c.Watchdog.Monitors {
		f := fmt.Sprintf("watchdog.monitors[%d]", i)
		if m.Name == "" {
			p.add(f+".name", "is required")
		}
		if !slices.Contains([]string{"service", "process", "memory", "cpu", "disk", "script"}, m.Kind) {
			p.add(f+".kind", "%q must be service, process, memory, cpu, disk or script", m.Kind)
		}
		if slices.Contains([]string{"service", "process", "disk", "script"}, m.Kind) && m.Target == "" {
			p.add(f+".target", "is required for a %s monitor", m.Kind)
		}
		if slices.Contains([]string{"memory", "cpu", "disk"}, m.Kind) && (m.Threshold <= 0 || m.Threshold > 100) {
			p.add(f+".threshold", "%g must be a percentage in (0, 100]", m.Threshold)
		}
		if m.Interval.D() <= 0 {
			p.add(f+".interval", "must be positive (seed 004 default 2s)")
		}
		if m.MaxFailures < 1 {
			p.add(f+".maxFailures", "%d must be at least 1 (seed 004 default 5)", m.MaxFailures)
		}
		if !slices.Contains([]string{"primary", "standby", "both"}, m.Scope) {
			p.add(f+".scope", "%q must be primary, standby or both", m.Scope)
		}
	}
	for i, s := range c.Watchdog.Services {
		f := fmt.Sprintf("watchdog.services[%d]", i)
		if s.Name == "" || s.Target == "" {
			p.add(f, "name and target are required")
		}
		if !slices.Contains([]string{"systemd", "container", "script"}, s.Kind) {
			p.add(f+".kind", "%q must be systemd, container or script", s.Kind)
		}
		if !slices.Contains([]string{"active", "standby", "both"}, s.RunOn) {
			p.add(f+".runOn", "%q must be active, standby or both", s.RunOn)
		}
	}
}

// arbiterKey is an arbiter's address spelled one way: an IP address in
// its canonical form, a host name in lower case without the root dot.
func arbiterKey(a Arbiter) string {
	host := strings.ToLower(strings.TrimSuffix(a.Host, "."))
	if ip, err := netip.ParseAddr(a.Host); err == nil {
		host = ip.Unmap().String()
	}
	return net.JoinHostPort(host, strconv.Itoa(arbiterPort(a)))
}

// arbiterPort is the arbiter's SSH port, 22 when unset (as Parse defaults
// it), so that a Config built in code compares the same way.
func arbiterPort(a Arbiter) int {
	if a.Port == 0 {
		return 22
	}
	return a.Port
}

func checkProbe(p *problems, field, probe string, port int) {
	switch probe {
	case "icmp":
	case "tcp":
		if port < 1 || port > 65535 {
			p.add(field+".port", "%d must be 1-65535 for a tcp probe", port)
		}
	default:
		p.add(field+".probe", "%q must be icmp or tcp", probe)
	}
}

func (c *Config) validateFailover(p *problems) {
	f := c.Failover
	if !slices.Contains([]string{"manual", "automatic"}, f.Failback) {
		p.add("failover.failback", "%q must be manual or automatic", f.Failback)
	}
	if f.BlockWindow.D() < 0 {
		p.add("failover.blockWindow", "must not be negative")
	}
	if f.MaxLagBytes < 0 {
		p.add("failover.maxLagBytes", "%d must be 0 or more", f.MaxLagBytes)
	}
	if f.MaxLagTransactions < 0 {
		p.add("failover.maxLagTransactions", "%d must be 0 or more", f.MaxLagTransactions)
	}
	switch sf := f.SelfFenceTimeout.D(); {
	case sf <= 0:
		p.add("failover.selfFenceTimeout", "must be positive (default 10s)")
	case sf > dbTimeout:
		p.add("failover.selfFenceTimeout", "%s is longer than a demotion's own bound %s, so it bounds nothing; lower it (default 10s)", sf, dbTimeout)
	case c.PgSQL.Enabled && sf <= pgFenceReloadWait:
		p.add("failover.selfFenceTimeout", "%s is too short with pgsql.enabled: the PostgreSQL fence alone waits up to %s for its reload to reach new sessions; raise it above that (default 10s)", sf, pgFenceReloadWait)
	}
	if c.Hooks.Timeout.D() <= 0 {
		p.add("hooks.timeout", "must be positive")
	}
	if c.Hooks.Timeout.D() > time.Hour {
		p.add("hooks.timeout", "%s is longer than an hour; a hung hook would block failover that long", c.Hooks.Timeout.D())
	}
}

// validateTiming checks the derived failover timings against each other
// (Timing.Checks); a broken one names the key to change.
func (c *Config) validateTiming(p *problems) {
	for _, ch := range c.Timing().Checks() {
		if ch.Required && !ch.Holds {
			p.add(ch.Field, "the failover timing contract needs %s, which does not hold: %s", ch.Inequality, ch.Fix)
		}
	}
}
