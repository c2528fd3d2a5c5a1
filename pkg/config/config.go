// Package config reads, defaults and validates a drwatch site configuration.
//
// The file holds every section of seed 000's `jmp-dr api v1 config` (core,
// mysql, pgsql, file, watchdog, deviceManagement) with the seed's defaults,
// plus drwatch's own: site, nats, vip, failover, hooks, http and telemetry.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is one site's configuration.
type Config struct {
	Site             Site             `yaml:"site"`
	NATS             NATS             `yaml:"nats"`
	VIP              VIP              `yaml:"vip"`
	Core             Core             `yaml:"core"`
	MySQL            MySQL            `yaml:"mysql"`
	PgSQL            PgSQL            `yaml:"pgsql"`
	File             File             `yaml:"file"`
	Watchdog         Watchdog         `yaml:"watchdog"`
	DeviceManagement DeviceManagement `yaml:"deviceManagement"`
	Failover         Failover         `yaml:"failover"`
	Hooks            Hooks            `yaml:"hooks"`
	HTTP             HTTP             `yaml:"http"`
	Telemetry        Telemetry        `yaml:"telemetry"`
}

// Site names this site, its peer and the node drwatch runs on.
type Site struct {
	// Name is this site's id, JetStream domain and subject token.
	Name string `yaml:"name"`
	// Peer is the other site's name.
	Peer string `yaml:"peer"`
	// Node names this host in events; defaults to the host name.
	Node string `yaml:"node"`
	// Role is the role taken at init when the log holds none yet.
	Role string `yaml:"role"`
	// PeerAddresses are the peer site's source addresses, as arbiters see
	// them in their session lists.
	PeerAddresses List `yaml:"peerAddresses"`
	// Addresses are this site's source addresses as arbiters see them
	// (what the peer lists in its peerAddresses). The active counts an
	// arbiter only when its session list names one of them; empty: the
	// address each managing session leaves from, which is wrong behind NAT.
	Addresses List `yaml:"addresses"`
}

// NATS says which NATS server the services use. With URL empty drwatch runs
// an embedded server (the default).
type NATS struct {
	URL       string   `yaml:"url"`
	CredsFile string   `yaml:"credsFile"`
	Embedded  Embedded `yaml:"embedded"`
}

// Embedded configures the in-process nats-server.
type Embedded struct {
	// Host the client port listens on; loopback by default, as only the
	// site's own processes connect.
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	StoreDir string `yaml:"storeDir"`
	// SyncAlways fsyncs every JetStream write. nats-server applies it to the
	// whole server; drwatch's log holds role decisions, so it is on.
	SyncAlways bool `yaml:"syncAlways"`
	// KeysDir holds one nkey seed per identity (site, each service, cli);
	// the server admits only them, each with the permissions its work
	// needs, and every client of the embedded server (services, the CLI)
	// reads its own seed there. Missing seeds are created (0600) on first
	// start. Default: <storeDir>/keys.
	KeysDir  string   `yaml:"keysDir"`
	Leafnode Leafnode `yaml:"leafnode"`
}

// Keys is the keys directory, defaulted.
func (e Embedded) Keys() string {
	if e.KeysDir != "" {
		return e.KeysDir
	}
	return filepath.Join(e.StoreDir, "keys")
}

// Leafnode joins the two sites' servers.
type Leafnode struct {
	// Listen accepts the peer's leafnode connection ("host:port"); empty
	// means no listener.
	Listen string `yaml:"listen"`
	// Remotes are the peer's leafnode URLs to dial.
	Remotes List `yaml:"remotes"`
	TLS     TLS  `yaml:"tls"`
	// Key is the pair's leafnode nkey seed, the same file on both sites:
	// the dialing site logs in with it, the listening site admits it with
	// the peer's confined permissions. Created when missing (then copy it
	// to the peer). Default: <keysDir>/leaf.nk.
	Key string `yaml:"key"`
}

// TLS names certificate files.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	CA   string `yaml:"ca"`
}

// Enabled reports whether any TLS file is set.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" || t.CA != "" }

// VIP is the service address the active site holds.
type VIP struct {
	// Address in CIDR form, e.g. 10.0.0.10/24.
	Address   string `yaml:"address"`
	Interface string `yaml:"interface"`
}

// Core is seed 000's core section.
type Core struct {
	PeerVIP                string   `yaml:"peerVip"`
	AdminPass              Secret   `yaml:"adminPass"`
	SCPTimeout             Duration `yaml:"scpTimeout"`
	PeerLoadBalancerNodes  List     `yaml:"peerLoadBalancerNodes"`
	PeerBusinessLogicNodes List     `yaml:"peerBusinessLogicNodes"`
	PeerDeviceMgtIPs       List     `yaml:"peerDeviceMgtIps"`
}

// MySQL is seed 000's mysql section plus how to reach the servers.
type MySQL struct {
	Enabled        bool   `yaml:"enabled"`
	HasDedicatedDB bool   `yaml:"hasDedicatedDb"`
	PeerVIP        string `yaml:"peerVip"`
	PeerNodes      List   `yaml:"peerNodes"`
	// DSN reaches this site's server (go-sql-driver form).
	DSN Secret `yaml:"dsn"`
	// ReplicationUser/Password are used when re-pointing replication.
	ReplicationUser     string   `yaml:"replicationUser"`
	ReplicationPassword Secret   `yaml:"replicationPassword"`
	CheckInterval       Duration `yaml:"checkInterval"`
	LagThreshold        Duration `yaml:"lagThreshold"`
	RepairAttempts      int      `yaml:"repairAttempts"`
	TLS                 TLS      `yaml:"tls"`
	// PeerDSN reaches the primary this server replicates from, to compare
	// GTID sets (errant transactions) and to copy it in a resync; empty
	// means the replica's Master_Host with the credentials of DSN.
	PeerDSN Secret `yaml:"peerDsn"`
	// AutoResync copies the primary in full when it purged the binlogs the
	// replica needs (seed 002); off, the copy waits for a resync command.
	AutoResync bool `yaml:"autoResync"`
	// KeepDir is where a resync dumps the replica's databases before it
	// drops them (on dbmonitor's host), so nothing is discarded without a
	// copy.
	KeepDir string `yaml:"keepDir"`
}

// PgSQL is seed 000's pgsql section plus how to reach the servers.
type PgSQL struct {
	Enabled     bool   `yaml:"enabled"`
	HasFmpm     bool   `yaml:"hasFmpm"`
	PeerFmpmVIP string `yaml:"peerFmpmVip"`
	PeerNodes   List   `yaml:"peerNodes"`
	// DSN reaches this site's server (pgx form).
	DSN                 Secret   `yaml:"dsn"`
	ReplicationUser     string   `yaml:"replicationUser"`
	ReplicationPassword Secret   `yaml:"replicationPassword"`
	CheckInterval       Duration `yaml:"checkInterval"`
	LagThreshold        Duration `yaml:"lagThreshold"`
	LagThresholdBytes   int64    `yaml:"lagThresholdBytes"`
	RepairAttempts      int      `yaml:"repairAttempts"`
	DataDir             string   `yaml:"dataDir"`
	// BinDir holds pg_ctl, pg_rewind and pg_basebackup for a rebuild or a
	// return to standby of the local server (dataDir set); empty means PATH.
	BinDir string `yaml:"binDir"`
	// OSUser owns dataDir and runs those tools (they refuse root).
	OSUser string `yaml:"osUser"`
	TLS    TLS    `yaml:"tls"`
	// PeerDSN reaches the primary this standby streams from, for lag in
	// bytes against its current LSN and timeline-fork checks; empty means
	// pg_stat_wal_receiver's sender with the credentials of DSN.
	PeerDSN Secret `yaml:"peerDsn"`
	// AutoResync rebuilds the standby when the primary removed the WAL it
	// needs (seed 002); off, the rebuild waits for a resync command.
	AutoResync bool `yaml:"autoResync"`
}

// File is seed 000's file section plus what to copy and how.
type File struct {
	Backup  Backup  `yaml:"backup"`
	Restore Restore `yaml:"restore"`
	// Paths are files, directories or globs copied from active to standby.
	Paths List `yaml:"paths"`
	// Dir is where the standby keeps its backups.
	Dir       string `yaml:"dir"`
	Transport string `yaml:"transport"`
	// SFTP is how the standby reaches the active site when Transport is sftp.
	SFTP FileSFTP `yaml:"sftp"`
}

// FileSFTP is the active site's SSH server, from which the standby pulls
// backups over SFTP (seed 000's SCP way).
type FileSFTP struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// PrivateKey is a key file; used instead of, or before, Password.
	PrivateKey string `yaml:"privateKey"`
	// KnownHosts verifies the peer's host key; there is no way to skip it.
	KnownHosts string `yaml:"knownHosts"`
	// RemoteDir is where the active site publishes its backups; empty
	// means <file.dir>/outgoing, the same layout on both sites.
	RemoteDir string `yaml:"remoteDir"`
}

// Backup is when the active site takes file backups and how many it keeps.
type Backup struct {
	MaxCount   int    `yaml:"maxCount"`
	HoursOfDay string `yaml:"hoursOfDay"`
	DaysOfWeek string `yaml:"daysOfWeek"`
}

// Restore is when the standby fetches the active site's backups.
type Restore struct {
	HoursOfDay string `yaml:"hoursOfDay"`
	DaysOfWeek string `yaml:"daysOfWeek"`
}

// Watchdog is seed 000's watchdog section and the local monitors of seed 004.
type Watchdog struct {
	Heartbeat        Heartbeat        `yaml:"heartbeat"`
	Notification     Notification     `yaml:"notification"`
	FailureDetection FailureDetection `yaml:"failureDetection"`
	Monitors         []Monitor        `yaml:"monitors"`
	Services         []ManagedService `yaml:"services"`
}

// Heartbeat is how the peer is probed.
type Heartbeat struct {
	Retries  int      `yaml:"retries"`
	Timeout  Duration `yaml:"timeout"`
	Interval Duration `yaml:"interval"`
	// Probe is "icmp" (the seed's ping) or "tcp".
	Probe string `yaml:"probe"`
	// Port is the TCP port probed when Probe is tcp.
	Port int `yaml:"port"`
	// Lines are extra heartbeat lines (seed 004); the default line probes
	// core.peerVip then core.peerLoadBalancerNodes.
	Lines []HeartbeatLine `yaml:"lines"`
}

// HeartbeatLine is one more independent path to the peer.
type HeartbeatLine struct {
	Name    string `yaml:"name"`
	VIP     string `yaml:"vip"`
	Nodes   List   `yaml:"nodes"`
	Probe   string `yaml:"probe"`
	Port    int    `yaml:"port"`
	Disable bool   `yaml:"disable"`
}

// DefaultHeartbeatLine names the heartbeat line built from core.peerVip and
// core.peerLoadBalancerNodes.
const DefaultHeartbeatLine = "default"

// HeartbeatLineNames are the lines the heartbeat probes with this
// configuration. Whoever counts lines that lost the peer must count only
// these: the log keeps the last status of a line since removed or disabled,
// and nothing will ever announce that line again.
func (c *Config) HeartbeatLineNames() []string {
	var names []string
	if c.Core.PeerVIP != "" || len(c.Core.PeerLoadBalancerNodes) > 0 {
		names = append(names, DefaultHeartbeatLine)
	}
	for _, l := range c.Watchdog.Heartbeat.Lines {
		if !l.Disable {
			names = append(names, l.Name)
		}
	}
	return names
}

// Notification is who is mailed, how often, through which server.
type Notification struct {
	Email    List     `yaml:"email"`
	Interval Duration `yaml:"interval"`
	SMTP     SMTP     `yaml:"smtp"`
}

// SMTP is the mail relay.
type SMTP struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	From     string `yaml:"from"`
	// Security is "starttls", "tls" or "none".
	Security string `yaml:"security"`
	// CA verifies the server's certificate; empty means the system pool.
	CA string `yaml:"ca"`
}

// FailureDetection is how a site decides the peer is gone.
type FailureDetection struct {
	IsCustom      bool      `yaml:"isCustom"`
	Script        string    `yaml:"script"`
	ScriptTimeout Duration  `yaml:"scriptTimeout"`
	Threshold     Threshold `yaml:"threshold"`
	WaitDuration  Duration  `yaml:"waitDuration"`
	Arbiters      []Arbiter `yaml:"arbiters"`
	// ProbeTimeout bounds one arbiter probe (ping or SSH login+command);
	// it defaults to watchdog.heartbeat.timeout.
	ProbeTimeout Duration `yaml:"probeTimeout"`
	// SessionCommand lists an arbiter's SSH sessions, one peer address per
	// line or in `ss`/`who` form.
	SessionCommand string `yaml:"sessionCommand"`
	// ArbiterProbe is how the active site reaches arbiters: icmp or tcp.
	ArbiterProbe string `yaml:"arbiterProbe"`
	// ArbiterSessionTimeout is how long an arbiter keeps listing the SSH
	// session of a site that went silent: its sshd's ClientAliveInterval
	// × ClientAliveCountMax. drwatch cannot read it from the arbiters; it
	// is stated here so that the timing contract (Timing) can count it.
	ArbiterSessionTimeout Duration `yaml:"arbiterSessionTimeout"`
}

// Threshold holds the shares of seed 000.
type Threshold struct {
	Failover      float64 `yaml:"failover"`
	AdjustManaged float64 `yaml:"adjustManaged"`
	Warning       float64 `yaml:"warning"`
}

// Arbiter is one arbitration device reached over SSH.
type Arbiter struct {
	Username   string `yaml:"username"`
	Password   Secret `yaml:"password"`
	Host       string `yaml:"host"`
	Port       int    `yaml:"port"`
	PrivateKey string `yaml:"privateKey"`
	// KnownHosts is the known_hosts file that verifies the arbiter.
	KnownHosts string `yaml:"knownHosts"`
}

// Monitor is a local monitor of seed 004.
type Monitor struct {
	Name string `yaml:"name"`
	// Kind: service, process, memory, cpu, disk or script.
	Kind string `yaml:"kind"`
	// Target: unit or container for service, cmdline pattern for process,
	// path for disk, script path for script.
	Target string `yaml:"target"`
	// Threshold is the percentage that trips memory, cpu and disk.
	Threshold   float64  `yaml:"threshold"`
	Interval    Duration `yaml:"interval"`
	MaxFailures int      `yaml:"maxFailures"`
	LogOnly     bool     `yaml:"logOnly"`
	// Scope: primary, standby or both.
	Scope      string `yaml:"scope"`
	ResultFile string `yaml:"resultFile"`
}

// ManagedService is a service kept in the state the role wants (seed 000
// serviceMonitor).
type ManagedService struct {
	Name string `yaml:"name"`
	// Kind: systemd, container or script.
	Kind string `yaml:"kind"`
	// Unit, container name, or script path (called with start|stop|status).
	Target string `yaml:"target"`
	// RunOn: active, standby or both.
	RunOn string `yaml:"runOn"`
}

// DeviceManagement is seed 000's deviceManagement section.
type DeviceManagement struct {
	PeerNodes List   `yaml:"peerNodes"`
	Nodes     List   `yaml:"nodes"`
	IP        string `yaml:"ip"`
}

// Failover holds the orchestrator's policy.
type Failover struct {
	Automatic bool `yaml:"automatic"`
	// Failback is "manual" (default, seeds 001/002) or "automatic".
	Failback string `yaml:"failback"`
	// BlockWindow blocks further automatic failovers after an automatic
	// one until an operator acknowledges it (drwatch failover ack) or the
	// window ends; 0 never blocks.
	BlockWindow Duration `yaml:"blockWindow"`
	// MaxLagBytes refuses automatic promotion of a standby further behind.
	MaxLagBytes int64 `yaml:"maxLagBytes"`
	// MaxLagTransactions is the MariaDB/MySQL counterpart, in transactions
	// behind the primary (a position answer's lagTransactions): MariaDB has
	// no byte offset that means the same on both servers. 0: the replica
	// must hold everything the primary had (Orchestrator/MHA promote only
	// a replica that caught up).
	MaxLagTransactions int64 `yaml:"maxLagTransactions"`
	// ObserveOnly decides, records and notifies but never acts.
	ObserveOnly bool `yaml:"observeOnly"`
	// VetoHook runs before promotion; a non-zero exit aborts the failover.
	VetoHook string `yaml:"vetoHook"`
	// SelfFenceTimeout bounds how long an active site that lost its
	// arbiters takes, once it has decided to stand down, to release the
	// VIP and make its databases read-only, before any hook or service
	// stop. It is a term of the self-fence bound (Timing.SelfFence).
	SelfFenceTimeout Duration `yaml:"selfFenceTimeout"`
}

// Hooks are scripts run around a role change, per direction (seed 003):
// s2m is standby→active, m2s is active→standby.
type Hooks struct {
	PreS2M  string   `yaml:"preS2M"`
	PostS2M string   `yaml:"postS2M"`
	PreM2S  string   `yaml:"preM2S"`
	PostM2S string   `yaml:"postM2S"`
	Timeout Duration `yaml:"timeout"`
}

// HTTP serves /healthz, /metrics and the API.
type HTTP struct {
	Listen string `yaml:"listen"`
	// Token authenticates API calls (Authorization: Bearer).
	Token Secret `yaml:"token"`
}

// Telemetry configures OpenTelemetry export.
type Telemetry struct {
	// OTLPEndpoint, when set, receives traces over OTLP/gRPC.
	OTLPEndpoint string `yaml:"otlpEndpoint"`
	Insecure     bool   `yaml:"insecure"`
}

// Defaults returns a configuration with every default of seed 000 and
// drwatch's own. Site names, peers and addresses have no default.
func Defaults() Config {
	return Config{
		Site: Site{Role: "standby"},
		NATS: NATS{Embedded: Embedded{
			Host:       "127.0.0.1",
			Port:       4222,
			StoreDir:   "/var/lib/drwatch/nats",
			SyncAlways: true,
		}},
		Core: Core{SCPTimeout: Duration(120 * time.Second)},
		MySQL: MySQL{
			ReplicationUser: "repUser",
			CheckInterval:   Duration(10 * time.Second),
			LagThreshold:    Duration(30 * time.Second),
			RepairAttempts:  3,
			KeepDir:         "/var/lib/drwatch/kept",
		},
		PgSQL: PgSQL{
			ReplicationUser:   "replication",
			CheckInterval:     Duration(10 * time.Second),
			LagThreshold:      Duration(30 * time.Second),
			LagThresholdBytes: 16 << 20,
			RepairAttempts:    3,
			OSUser:            "postgres",
		},
		File: File{
			Backup:    Backup{MaxCount: 3, HoursOfDay: "*", DaysOfWeek: "*"},
			Restore:   Restore{HoursOfDay: "*", DaysOfWeek: "*"},
			Dir:       "/var/lib/drwatch/files",
			Transport: "objectstore",
			SFTP:      FileSFTP{Port: 22},
		},
		Watchdog: Watchdog{
			Heartbeat: Heartbeat{
				Retries:  4,
				Timeout:  Duration(5 * time.Second),
				Interval: Duration(30 * time.Second),
				Probe:    "icmp",
			},
			Notification: Notification{
				Interval: Duration(3600 * time.Second),
				SMTP:     SMTP{Port: 25, Security: "starttls"},
			},
			FailureDetection: FailureDetection{
				Script:         "/var/cache/jmp-geo/watchdog/bin/arbitration",
				ScriptTimeout:  Duration(30 * time.Second),
				Threshold:      Threshold{Failover: 0.5, AdjustManaged: 0.5, Warning: 0.7},
				WaitDuration:   Duration(8 * time.Hour),
				SessionCommand: "who",
				ArbiterProbe:   "icmp",
				// ClientAliveInterval 10 × ClientAliveCountMax 3, the
				// arbiter README's example.
				ArbiterSessionTimeout: Duration(30 * time.Second),
			},
		},
		Failover: Failover{
			Automatic: true,
			Failback:  "manual",
			// orchestrator's RecoveryPeriodBlockSeconds: long enough to
			// stop a flapping pair, short enough that a second disaster
			// the same day is not left to an operator who never saw the
			// first mail. Failovers an operator asked for open none.
			BlockWindow: Duration(time.Hour),
			MaxLagBytes: 1 << 20,
			// Explicit: a MariaDB replica behind by even one transaction
			// is not promoted automatically.
			MaxLagTransactions: 0,
			// dbmonitor's PostgreSQL fence alone may wait 5 s for its
			// reload to reach new sessions; MariaDB's read_only is quick.
			SelfFenceTimeout: Duration(10 * time.Second),
		},
		Hooks: Hooks{Timeout: Duration(60 * time.Second)},
		HTTP:  HTTP{Listen: "127.0.0.1:8480"},
	}
}

// monitorDefaults are seed 004's: every 2 s, trip after 5 failures, both roles.
func (m *Monitor) applyDefaults() {
	if m.Interval == 0 {
		m.Interval = Duration(2 * time.Second)
	}
	if m.MaxFailures == 0 {
		m.MaxFailures = 5
	}
	if m.Scope == "" {
		m.Scope = "both"
	}
}

func (a *Arbiter) applyDefaults() {
	if a.Port == 0 {
		a.Port = 22
	}
}

// Load reads, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes YAML strictly (unknown keys are errors) over the defaults
// and validates the result.
func Parse(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	for i := range cfg.Watchdog.Monitors {
		cfg.Watchdog.Monitors[i].applyDefaults()
	}
	for i := range cfg.Watchdog.FailureDetection.Arbiters {
		cfg.Watchdog.FailureDetection.Arbiters[i].applyDefaults()
	}
	// An arbiter probe is bounded like a heartbeat probe unless set.
	if cfg.Watchdog.FailureDetection.ProbeTimeout == 0 {
		cfg.Watchdog.FailureDetection.ProbeTimeout = cfg.Watchdog.Heartbeat.Timeout
	}
	if cfg.Site.Node == "" {
		cfg.Site.Node, _ = os.Hostname()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}
