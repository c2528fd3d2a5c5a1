package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/drwatch/drwatch/pkg/checker"
	"github.com/drwatch/drwatch/tests/e2e/internal/mailsink"
	"github.com/drwatch/drwatch/tests/e2e/internal/secrets"
)

// The suite's addresses mirror deployments/compose (same last octets) on
// subnets of their own, so the example and the suite can run side by side.
const (
	lanSubnet = "172.28.0.0/24"
	wanSubnet = "172.29.0.0/24"
	vipAddr   = "172.28.0.100"
	mailAddr  = "172.29.0.60"
	label     = "drwatch-e2e"
)

var arbiterAddrs = []string{"172.29.0.31", "172.29.0.32", "172.29.0.33"}

// siteAddrs are a site's addresses: wan carries the leafnode link,
// replication and heartbeats; lan is where the VIP lives.
type siteAddrs struct{ wan, lan string }

var sitesAddrs = map[string]siteAddrs{
	"a": {wan: "172.29.0.10", lan: "172.28.0.11"},
	"b": {wan: "172.29.0.20", lan: "172.28.0.21"},
}

func peerOf(s string) string {
	if s == "a" {
		return "b"
	}
	return "a"
}

// needDocker skips on a machine without Docker, and fails in CI, where a
// missing prerequisite must never pass silently.
func needDocker(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end suite skipped in -short mode")
	}
	msg := ""
	if _, err := exec.LookPath("docker"); err != nil {
		msg = "docker CLI not found"
	} else if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		msg = fmt.Sprintf("docker engine not reachable: %v: %s", err, bytes.TrimSpace(out))
	}
	if msg == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("end-to-end suite needs Docker: %s", msg)
	}
	t.Skipf("end-to-end suite needs Docker: %s (set up Docker or run with -short)", msg)
}

var (
	imagesOnce sync.Once
	imagesErr  error
)

// buildImages runs scripts/images.sh once per test binary (cached images
// make it quick). DRWATCH_E2E_SKIP_IMAGES=1 uses whatever images exist.
func buildImages(t *testing.T) {
	t.Helper()
	if os.Getenv("DRWATCH_E2E_SKIP_IMAGES") == "1" {
		return
	}
	imagesOnce.Do(func() {
		start := time.Now()
		args := []string{}
		if names := os.Getenv("DRWATCH_E2E_IMAGES"); names != "" {
			args = strings.Fields(names)
		}
		cmd := exec.Command("../../scripts/images.sh", args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			imagesErr = fmt.Errorf("scripts/images.sh: %w\n%s", err, out.String())
			return
		}
		fmt.Fprintf(os.Stderr, "%s(images built in %s)\n", out.String(), time.Since(start).Round(time.Second))
	})
	if imagesErr != nil {
		t.Fatal(imagesErr)
	}
}

func image(kind string) string {
	if v := os.Getenv("DRWATCH_IMAGE_" + strings.ToUpper(kind)); v != "" {
		return v
	}
	return "drwatch/" + kind + ":local"
}

// Timers are the heartbeat's.
type Timers struct {
	Interval, Timeout time.Duration
	Retries           int
}

var (
	// DefaultTimers are seed 000's.
	DefaultTimers = Timers{Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 4}
	// AggressiveTimers are the fast ones the issue measures.
	AggressiveTimers = Timers{Interval: time.Second, Timeout: 500 * time.Millisecond, Retries: 2}
)

// What the suite's pair runs with besides the heartbeat timers, and which
// the bounds below build on.
const (
	// arbiterKeepalive is how long an arbiter keeps listing a silenced
	// site's SSH session: the arbiter image's sshd probes after
	// ClientAliveInterval (2 s) of silence and drops the session after
	// ClientAliveCountMax (3) more unanswered probes.
	arbiterKeepalive = 2 * time.Second * (3 + 1)
	// arbiterProbeTimeout is watchdog.failureDetection.probeTimeout's
	// default, which the suite's site.yaml keeps: one arbitration round, or
	// one arbiter quorum check, waits at most this long.
	arbiterProbeTimeout = 5 * time.Second
)

// Name is how a scenario's subtest and its FIGURES line name the timers.
func (tm Timers) Name() string {
	switch tm {
	case AggressiveTimers:
		return "aggressive"
	case DefaultTimers:
		return "default"
	}
	return fmt.Sprintf("%s/%s/%d", tm.Interval, tm.Timeout, tm.Retries)
}

// Detection bounds a silenced peer → RemoteUnreachable: the next round
// starts within an interval, and its VIP attempts, the last of them and
// the node probe each wait a full timeout (services/heartbeat README,
// "silent").
func (tm Timers) Detection() time.Duration {
	return tm.Interval + time.Duration(tm.Retries+2)*tm.Timeout
}

// Arbitration bounds how long after the detection a verdict that can hold
// comes: the arbiters drop a silenced site's sessions arbiterKeepalive
// after the fault (after the detection, with aggressive timers), the next
// round (the first at the detection, then every interval) starts, and it
// takes at most one probe timeout.
func (tm Timers) Arbitration() time.Duration {
	return arbiterKeepalive + tm.Interval + arbiterProbeTimeout
}

// Limit is how long a test waits for anything the heartbeat and the
// arbitration drive (a detection, a verdict, a takeover, a stand-down):
// twice their bounds, for the loaded 2-core box, and a minute for the
// takeover itself (the arbiter claim, at most 5 probe timeouts + 6 s, and
// the database steps).
func (tm Timers) Limit() time.Duration {
	return 2*(tm.Detection()+tm.Arbitration()) + time.Minute
}

// Quiet is how long a scenario in which nothing may move watches, from the
// fault on: a whole detection and arbitration, one more round, and time
// for a (wrong) decision to reach the log (assertNothingMovedSince counts
// a started failover). Shorter, a "nothing moved" would prove nothing with
// the seed's timers.
func (tm Timers) Quiet() time.Duration {
	return tm.Detection() + tm.Arbitration() + tm.Interval + 5*time.Second
}

// defaultTimersEnv opts in to the seed-default timer runs.
const defaultTimersEnv = "DRWATCH_E2E_DEFAULT_TIMERS"

// forEachTimers runs scenario once per timer set the issue measures, each
// a subtest named after the set: the aggressive timers always, the seed's
// defaults (minutes per scenario) only with DRWATCH_E2E_DEFAULT_TIMERS=1.
func forEachTimers(t *testing.T, scenario func(t *testing.T, tm Timers)) {
	for _, tm := range []Timers{AggressiveTimers, DefaultTimers} {
		t.Run(tm.Name(), func(t *testing.T) {
			if tm == DefaultTimers && os.Getenv(defaultTimersEnv) != "1" {
				t.Skip("seed-default timers take minutes per failover; " + defaultTimersEnv + "=1 measures them")
			}
			scenario(t, tm)
		})
	}
}

// PairOptions shape a pair.
type PairOptions struct {
	Timers Timers
	// Drwatch starts each site's drwatch; without it the pair is the bare
	// infrastructure (databases, arbiters, networks).
	Drwatch bool
	// ManualOnly turns automatic failover off on both sites.
	ManualOnly bool
}

// Site is one site's containers.
type Site struct {
	Name     string
	Addrs    siteAddrs
	Node     *testcontainers.DockerContainer
	MariaDB  *testcontainers.DockerContainer
	Postgres *testcontainers.DockerContainer
	Drwatch  *testcontainers.DockerContainer
	// Iface is the interface holding the lan address, which vip.interface
	// names (Docker numbers interfaces in attach order).
	Iface string
}

// Pair is two sites, three arbiters and a mail sink on two networks.
type Pair struct {
	t        *testing.T
	opts     PairOptions
	docker   *client.Client
	dir      string
	Lan, Wan *testcontainers.DockerNetwork
	Sites    map[string]*Site
	Arbiters []*testcontainers.DockerContainer
	Mail     *testcontainers.DockerContainer
	Start    time.Time
}

// StartPair builds the images and starts a pair; everything is removed
// when the test ends.
func StartPair(t *testing.T, opts PairOptions) *Pair {
	t.Helper()
	needDocker(t)
	buildImages(t)
	if opts.Timers == (Timers{}) {
		opts.Timers = AggressiveTimers
	}
	ctx := context.Background()
	dc, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	p := &Pair{t: t, opts: opts, docker: dc.Client, dir: t.TempDir(), Sites: map[string]*Site{}}
	removeLeftovers(t, p.docker)
	t.Cleanup(func() { removeLeftovers(t, p.docker) })

	p.Lan = newNetwork(t, lanSubnet)
	p.Wan = newNetwork(t, wanSubnet)
	sec := filepath.Join(p.dir, "secrets")
	err = secrets.Generate(secrets.Options{
		Dir: sec,
		Sites: []secrets.Site{
			{Name: "a", Hosts: []string{sitesAddrs["a"].wan, sitesAddrs["a"].lan}},
			{Name: "b", Hosts: []string{sitesAddrs["b"].wan, sitesAddrs["b"].lan}},
		},
		Arbiters: arbiterAddrs,
	})
	if err != nil {
		t.Fatal(err)
	}

	for i, addr := range arbiterAddrs {
		p.Arbiters = append(p.Arbiters, p.run(t, fmt.Sprintf("arbiter%d", i+1), testcontainers.ContainerRequest{
			Image: image("arbiter"),
			Env: map[string]string{
				"ARBITER_HOST_KEY":        fmt.Sprintf("/secrets/arbiter%d_host_key", i+1),
				"ARBITER_AUTHORIZED_KEYS": "/secrets/authorized_keys",
			},
		}, map[string]string{p.Wan.Name: addr}, []string{sec + ":/secrets:ro"}, []string{"NET_ADMIN"}, ""))
	}
	p.Mail = p.run(t, "mailsink", testcontainers.ContainerRequest{
		Image: image("client"),
		Cmd:   []string{"/usr/local/bin/mailsink", "-smtp", ":25", "-http", ":8025"},
	}, map[string]string{p.Wan.Name: mailAddr}, nil, nil, "")

	for _, name := range []string{"a", "b"} {
		p.startSiteInfra(t, name, sec)
	}
	p.waitDatabases(t)
	p.Start = time.Now()
	if opts.Drwatch {
		for _, name := range []string{"a", "b"} {
			p.StartDrwatch(t, name)
		}
	}
	return p
}

func newNetwork(t *testing.T, subnet string) *testcontainers.DockerNetwork {
	t.Helper()
	pfx := netip.MustParsePrefix(subnet)
	// Dynamic addresses come from the upper half, so the static ones and
	// the VIP (below .128) are never handed out.
	upper := netip.PrefixFrom(netip.AddrFrom4([4]byte{pfx.Addr().As4()[0], pfx.Addr().As4()[1], pfx.Addr().As4()[2], 128}), 25)
	n, err := tcnetwork.New(context.Background(),
		tcnetwork.WithLabels(map[string]string{label: "1"}),
		tcnetwork.WithIPAM(&network.IPAM{Config: []network.IPAMConfig{{Subnet: pfx, IPRange: upper}}}))
	if err != nil {
		t.Fatalf("create network %s: %v", subnet, err)
	}
	return n
}

// removeLeftovers removes containers and networks a crashed earlier run
// left (the suite runs without Ryuk), which would hold its subnets.
func removeLeftovers(t *testing.T, dc *client.Client) {
	ctx := context.Background()
	f := client.Filters{}.Add("label", label+"=1")
	cs, err := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err == nil {
		// Containers sharing a node's network go before the node.
		for pass := 0; pass < 2; pass++ {
			for _, c := range cs.Items {
				isNode := c.Labels["drwatch-e2e-role"] == "node"
				if isNode == (pass == 1) {
					dc.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
				}
			}
		}
	}
	ns, err := dc.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err == nil {
		for _, n := range ns.Items {
			dc.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
		}
	}
}

// run starts one container. nets maps network names to static addresses;
// netOf, when set, joins that container's network namespace instead.
func (p *Pair) run(t *testing.T, role string, req testcontainers.ContainerRequest, nets map[string]string, binds, caps []string, netOf string) *testcontainers.DockerContainer {
	t.Helper()
	req.Name = fmt.Sprintf("e2e-%s-%d", role, time.Now().UnixNano()%1e6)
	req.Labels = map[string]string{label: "1", "drwatch-e2e-role": role}
	// Only the first network goes in the request: Docker's create takes one
	// endpoint with its static address, and testcontainers would connect
	// the others without theirs. Lan first, so it is eth0; the site code
	// still reads the interface name rather than trusting it.
	var order []string
	for _, n := range []string{p.Lan.Name, p.Wan.Name} {
		if _, ok := nets[n]; ok {
			order = append(order, n)
		}
	}
	if len(order) > 0 {
		req.Networks = order[:1]
		req.EndpointSettingsModifier = func(m map[string]*network.EndpointSettings) {
			if es := m[order[0]]; es != nil {
				es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr(nets[order[0]])}
			}
		}
	}
	req.HostConfigModifier = func(hc *container.HostConfig) {
		hc.Binds = append(hc.Binds, binds...)
		hc.CapAdd = append(hc.CapAdd, caps...)
		if netOf != "" {
			hc.NetworkMode = container.NetworkMode("container:" + netOf)
		}
	}
	ctx := context.Background()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: len(order) < 2})
	dcont, _ := c.(*testcontainers.DockerContainer)
	if err == nil && len(order) > 1 {
		for _, n := range order[1:] {
			_, err = p.docker.NetworkConnect(ctx, n, client.NetworkConnectOptions{
				Container:      dcont.GetContainerID(),
				EndpointConfig: &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr(nets[n])}},
			})
			if err != nil {
				break
			}
		}
		if err == nil {
			err = dcont.Start(ctx)
		}
	}
	if err != nil {
		if dcont != nil {
			logTail(t, dcont, role)
		}
		t.Fatalf("start %s: %v", role, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t, dcont, role)
		}
	})
	return dcont
}

func logTail(t *testing.T, c *testcontainers.DockerContainer, role string) {
	rc, err := c.Logs(context.Background())
	if err != nil {
		return
	}
	defer rc.Close()
	data, _ := io.ReadAll(rc)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("--- last log lines of %s:\n%s", role, strings.Join(lines, "\n"))
}

func (p *Pair) startSiteInfra(t *testing.T, name, sec string) {
	t.Helper()
	a := sitesAddrs[name]
	peer := sitesAddrs[peerOf(name)]
	s := &Site{Name: name, Addrs: a}
	s.Node = p.run(t, "node", testcontainers.ContainerRequest{Image: image("node"), Hostname: "site-" + name},
		map[string]string{p.Lan.Name: a.lan, p.Wan.Name: a.wan}, []string{sec + ":/secrets:ro"}, []string{"NET_ADMIN"}, "")
	id := s.Node.GetContainerID()
	out := p.Exec(t, s.Node, "sh", "-c", "ip -o -4 addr | awk '$4 ~ /^"+strings.ReplaceAll(a.lan, ".", "\\.")+"\\// {print $2}'")
	s.Iface = strings.TrimSpace(out)
	if s.Iface == "" {
		t.Fatalf("site %s: no interface holds %s:\n%s", name, a.lan, p.Exec(t, s.Node, "ip", "-o", "-4", "addr"))
	}
	if got, _ := p.TryExec(s.Node, "ip", "-o", "-4", "addr"); !strings.Contains(got, " "+a.wan+"/") {
		t.Fatalf("site %s: wan address %s missing:\n%s", name, a.wan, got)
	}
	// A chain of its own holds the cuts, so healing never touches other rules.
	p.Exec(t, s.Node, "sh", "-c", "iptables -N E2E && iptables -I INPUT -j E2E && iptables -I OUTPUT -j E2E")
	myRole, pgRole, sid := "primary", "primary", "1"
	if name == "b" {
		myRole, pgRole, sid = "replica", "standby", "2"
	}
	s.MariaDB = p.run(t, "mariadb-"+name, testcontainers.ContainerRequest{
		Image: image("mariadb"),
		Env:   map[string]string{"DB_ROLE": myRole, "DB_SERVER_ID": sid, "DB_PRIMARY_HOST": peer.wan},
	}, nil, nil, nil, id)
	p.Sites[name] = s
	// drwatch's dbmonitor runs beside PostgreSQL (it rewinds a former
	// primary in place: deployments/images/postgres), on the site's config.
	pgEnv := map[string]string{"DB_ROLE": pgRole, "DB_PRIMARY_HOST": peer.wan}
	var pgBinds []string
	if p.opts.Drwatch {
		cfg := p.writeConfig(t, name)
		pgEnv["DRWATCH_CONFIG"] = "/etc/drwatch/site.yaml"
		pgBinds = []string{cfg + ":/etc/drwatch/site.yaml:ro", sec + ":/secrets:ro"}
	}
	s.Postgres = p.run(t, "postgres-"+name, testcontainers.ContainerRequest{Image: image("postgres"), Env: pgEnv}, nil, pgBinds, nil, id)
}

// waitDatabases waits until MariaDB and PostgreSQL replicate a → b.
func (p *Pair) waitDatabases(t *testing.T) {
	t.Helper()
	b := p.Sites["b"]
	waitFor(t, 2*time.Minute, "MariaDB replication a → b running", func() (bool, string) {
		out, _ := p.TryExec(b.MariaDB, "mariadb", "-e", "SHOW SLAVE STATUS\\G")
		return strings.Contains(out, "Slave_IO_Running: Yes") && strings.Contains(out, "Slave_SQL_Running: Yes"), out
	})
	waitFor(t, 3*time.Minute, "PostgreSQL streaming a → b", func() (bool, string) {
		out, _ := p.TryExec(b.Postgres, "psql", "-U", "postgres", "-tA", "-c", "SELECT status FROM pg_stat_wal_receiver")
		return strings.TrimSpace(out) == "streaming", out
	})
}

// siteConfig is the YAML of one site in the suite: the example's
// deployments/compose/site-*/site.yaml with the suite's addresses, the
// interface found and the timers asked for.
var siteConfig = template.Must(template.New("site").Parse(`site:
  name: {{.Name}}
  peer: {{.Peer}}
  role: {{.Role}}
  node: site-{{.Name}}
  peerAddresses: [{{.PeerWan}}]
nats:
  embedded:
    # Not the example's loopback: the suite reads the log from the host
    # (as the site's cli, with its key).
    host: 0.0.0.0
    port: 4222
    storeDir: /var/lib/drwatch/nats
    syncAlways: true
    # In the secrets both containers of the site mount: dbmonitor, in the
    # PostgreSQL container, connects with its own key too.
    keysDir: /secrets/nats-{{.Name}}
    leafnode:
      key: /secrets/leaf.nk
{{- if eq .Name "a"}}
      listen: 0.0.0.0:7422
{{- else}}
      remotes: [nats-leaf://{{.PeerWan}}:7422]
{{- end}}
      tls: {cert: /secrets/{{.Name}}.pem, key: /secrets/{{.Name}}-key.pem, ca: /secrets/ca.pem}
vip:
  address: {{.VIP}}/24
  interface: {{.Iface}}
core:
  peerVip: {{.PeerWan}}
  peerLoadBalancerNodes: [{{.PeerLan}}]
mysql:
  enabled: true
  peerNodes: [{{.PeerWan}}]
  dsn: drwatch:drwatch@tcp(127.0.0.1:3306)/
  replicationUser: repl
  replicationPassword: repl
pgsql:
  enabled: true
  peerNodes: [{{.PeerWan}}]
  dsn: postgres://drwatch:drwatch@127.0.0.1:5432/postgres?sslmode=disable
  replicationUser: replication
  replicationPassword: repl
  dataDir: /var/lib/postgresql/data
  binDir: /usr/lib/postgresql/15/bin
  osUser: postgres
watchdog:
  heartbeat:
    probe: tcp
    port: 8480
    interval: {{.Timers.Interval}}
    timeout: {{.Timers.Timeout}}
    retries: {{.Timers.Retries}}
  notification:
    email: [ops@example.org]
    smtp: {host: {{.Mail}}, port: 25, security: none, from: drwatch-{{.Name}}@example.org}
  failureDetection:
    sessionCommand: "ss -tnH state established '( sport = :22 )'"
    arbiters:
{{- range .Arbiters}}
      - {host: {{.}}, username: drwatch, privateKey: /secrets/{{$.Name}}_ssh_key, knownHosts: /secrets/known_hosts}
{{- end}}
failover:
  automatic: {{not .ManualOnly}}
http:
  listen: 0.0.0.0:8480
`))

// writeConfig writes (or rewrites, with the interface found after a power
// on) site name's YAML and returns its path; the drwatch and PostgreSQL
// containers mount it.
func (p *Pair) writeConfig(t *testing.T, name string) string {
	t.Helper()
	s := p.Sites[name]
	role := "standby"
	if name == "a" {
		role = "active"
	}
	var buf bytes.Buffer
	err := siteConfig.Execute(&buf, map[string]any{
		"Name": name, "Peer": peerOf(name), "Role": role, "PeerWan": sitesAddrs[peerOf(name)].wan,
		"PeerLan": sitesAddrs[peerOf(name)].lan, "VIP": vipAddr, "Iface": s.Iface, "Timers": p.opts.Timers,
		"Mail": mailAddr, "Arbiters": arbiterAddrs, "ManualOnly": p.opts.ManualOnly,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(p.dir, "site-"+name+".yaml")
	if err := os.WriteFile(cfg, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// StartDrwatch starts (or restarts after a kill) a site's drwatch: every
// service but dbmonitor, which runs in the PostgreSQL container.
func (p *Pair) StartDrwatch(t *testing.T, name string) {
	t.Helper()
	s := p.Sites[name]
	cfg := p.writeConfig(t, name)
	store := filepath.Join(p.dir, "store-"+name)
	os.MkdirAll(store, 0o755)
	s.Drwatch = p.run(t, "drwatch-"+name, testcontainers.ContainerRequest{
		Image: image("drwatch"),
		Cmd:   []string{"run", "-config", "/etc/drwatch/site.yaml", "-services", "heartbeat,arbiter,filesync,notifier,orchestrator"},
	}, nil, []string{cfg + ":/etc/drwatch/site.yaml:ro", filepath.Join(p.dir, "secrets") + ":/secrets:ro", store + ":/var/lib/drwatch"},
		[]string{"NET_ADMIN", "NET_RAW"}, s.Node.GetContainerID())
	waitFor(t, time.Minute, "site "+name+" drwatch healthy", func() (bool, string) {
		resp, err := http.Get("http://" + s.Addrs.wan + ":8480/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
}

// Exec runs a command in c and returns its output; a non-zero exit fails
// the test.
func (p *Pair) Exec(t *testing.T, c *testcontainers.DockerContainer, cmd ...string) string {
	t.Helper()
	out, err := p.TryExec(c, cmd...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
	}
	return out
}

// TryExec runs a command in c and returns its output and an error for a
// non-zero exit.
func (p *Pair) TryExec(c *testcontainers.DockerContainer, cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, r, err := c.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		return "", err
	}
	data, _ := io.ReadAll(r)
	if code != 0 {
		return string(data), fmt.Errorf("exit status %d", code)
	}
	return string(data), nil
}

// Cut drops every packet between site and the given addresses (both
// ways), as a broken WAN would: established connections hang, new ones
// time out.
func (p *Pair) Cut(t *testing.T, site string, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		p.Exec(t, p.Sites[site].Node, "sh", "-c", fmt.Sprintf("iptables -A E2E -s %s -j DROP && iptables -A E2E -d %s -j DROP", a, a))
	}
}

// Heal removes every cut of site.
func (p *Pair) Heal(t *testing.T, site string) {
	t.Helper()
	p.Exec(t, p.Sites[site].Node, "iptables", "-F", "E2E")
}

// PeerAddrs are every address of the peer of site.
func PeerAddrs(site string) []string {
	a := sitesAddrs[peerOf(site)]
	return []string{a.wan, a.lan}
}

// PowerOff kills every container of a site at once (SIGKILL), as a power
// cut would: no process gets to release anything.
func (p *Pair) PowerOff(t *testing.T, site string) time.Time {
	t.Helper()
	s := p.Sites[site]
	// Killed processes close their sockets, and the kernel would tell the
	// peers (FIN, RST) — a power cut tells nobody. Silence the site first,
	// so the arbiters and the peer learn of it only by their timeouts.
	p.Exec(t, s.Node, "sh", "-c", "iptables -I INPUT 1 -j DROP && iptables -I OUTPUT 1 -j DROP")
	at := time.Now()
	for _, c := range []*testcontainers.DockerContainer{s.Drwatch, s.MariaDB, s.Postgres, s.Node} {
		if c == nil {
			continue
		}
		if _, err := p.docker.ContainerKill(context.Background(), c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
			t.Fatalf("power off site %s: %v", site, err)
		}
	}
	return at
}

// Kill kills one container (a process crash).
func (p *Pair) Kill(t *testing.T, c *testcontainers.DockerContainer) {
	t.Helper()
	if _, err := p.docker.ContainerKill(context.Background(), c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatalf("kill: %v", err)
	}
}

// VIPHolders lists the sites whose interface holds the VIP now. A site
// that is powered off holds nothing.
func (p *Pair) VIPHolders(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, name := range []string{"a", "b"} {
		s := p.Sites[name]
		got, err := p.TryExec(s.Node, "ip", "-o", "-4", "addr", "show", "dev", s.Iface)
		if err == nil && strings.Contains(got, " "+vipAddr+"/") {
			out = append(out, name)
		}
	}
	return out
}

// MoveVIP moves the VIP by hand (the infrastructure test; drwatch does it
// in the scenarios).
func (p *Pair) MoveVIP(t *testing.T, to string) {
	t.Helper()
	for _, name := range []string{"a", "b"} {
		s := p.Sites[name]
		p.TryExec(s.Node, "ip", "addr", "del", vipAddr+"/24", "dev", s.Iface)
	}
	s := p.Sites[to]
	p.Exec(t, s.Node, "ip", "addr", "add", vipAddr+"/24", "dev", s.Iface)
	// Tell the lan the address moved (what the orchestrator's gratuitous
	// ARP does); the node image has no arping, so ping out instead.
	p.TryExec(s.Node, "sh", "-c", "ip neigh flush dev "+s.Iface)
}

// Mails returns what the mail sink received.
func (p *Pair) Mails(t *testing.T) []mailsink.Message {
	t.Helper()
	resp, err := http.Get("http://" + mailAddr + ":8025/messages")
	if err != nil {
		t.Fatalf("mail sink: %v", err)
	}
	defer resp.Body.Close()
	var msgs []mailsink.Message
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatalf("mail sink: %v", err)
	}
	return msgs
}

// DB opens MariaDB at addr (a site's wan address or the VIP) as the app.
func DB(t *testing.T, addr string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", "app:app@tcp("+addr+":3306)/app?timeout=2s&readTimeout=3s&writeTimeout=3s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// waitFor polls cond until it holds or the time is up; the failure names
// what was awaited and the last thing seen.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < limit {
		ok, seen := cond()
		if ok {
			return time.Since(start)
		}
		last = seen
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("waited %s for %s; last seen: %s", limit, what, strings.TrimSpace(last))
	return 0
}

type (
	mailMessage = mailsink.Message
	roleChange  = checker.RoleChange
)

// mentions reports whether a mail names the site and the word.
func mentions(m mailMessage, site, word string) bool {
	text := strings.ToLower(m.Subject + " " + m.Body)
	return strings.Contains(text, strings.ToLower(word)) && (strings.Contains(text, "site "+site) || strings.Contains(text, "site \""+site+"\"") || strings.Contains(text, site+" "))
}

func subjects(ms []mailMessage) string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%q", m.Subject))
	}
	return strings.Join(out, ", ")
}

// CLI runs the drwatch command line inside a site's drwatch container, as
// an operator on that site would, and returns its output.
func (p *Pair) CLI(t *testing.T, site string, args ...string) string {
	t.Helper()
	cmd := append([]string{"/usr/local/bin/drwatch"}, args...)
	cmd = append(cmd, "-config", "/etc/drwatch/site.yaml")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code, r, err := p.Sites[site].Drwatch.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("site %s: %s: %v", site, strings.Join(args, " "), err)
	}
	data, _ := io.ReadAll(r)
	if code != 0 {
		t.Fatalf("site %s: drwatch %s: exit status %d\n%s", site, strings.Join(args, " "), code, data)
	}
	return string(data)
}

// PowerOn brings a powered-off site back as a machine would boot: the
// node (its namespace) first, then the databases on their own data, then
// drwatch on its own log. Nothing of the site's state is reset.
func (p *Pair) PowerOn(t *testing.T, site string) {
	t.Helper()
	s := p.Sites[site]
	ctx := context.Background()
	for _, c := range []*testcontainers.DockerContainer{s.Node, s.MariaDB, s.Postgres} {
		if _, err := p.docker.ContainerStart(ctx, c.GetContainerID(), client.ContainerStartOptions{}); err != nil {
			t.Fatalf("power on site %s: %v", site, err)
		}
	}
	out := p.Exec(t, s.Node, "sh", "-c", "ip -o -4 addr | awk '$4 ~ /^"+strings.ReplaceAll(s.Addrs.lan, ".", "\\.")+"\\// {print $2}'")
	s.Iface = strings.TrimSpace(out)
	if s.Iface == "" {
		t.Fatalf("site %s: no interface holds %s after power on", site, s.Addrs.lan)
	}
	p.Exec(t, s.Node, "sh", "-c", "iptables -N E2E && iptables -I INPUT -j E2E && iptables -I OUTPUT -j E2E")
	waitFor(t, time.Minute, "site "+site+" MariaDB up", func() (bool, string) {
		out, err := p.TryExec(s.MariaDB, "mariadb", "-e", "SELECT 1")
		return err == nil, out
	})
	p.StartDrwatch(t, site)
}

// MariaDB runs a query with the mariadb client inside a site's MariaDB
// container (as root) and returns its tab-separated output.
func (p *Pair) MariaDB(t *testing.T, site, query string) string {
	t.Helper()
	return strings.TrimSpace(p.Exec(t, p.Sites[site].MariaDB, "mariadb", "-N", "-B", "-e", query))
}

// SampleVIP records the VIP holders every period until the returned stop
// is called, which returns the samples.
func (p *Pair) SampleVIP(t *testing.T, period time.Duration) (stop func() []checker.VIPSample) {
	ctx, cancel := context.WithCancel(context.Background())
	var samples []checker.VIPSample
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			at := time.Now()
			samples = append(samples, checker.VIPSample{At: at, Holders: p.VIPHolders(t)})
			select {
			case <-ctx.Done():
			case <-time.After(period):
			}
		}
	}()
	return func() []checker.VIPSample { cancel(); <-done; return samples }
}
