package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// SectionNames are the sections of seed 000's `jmp-dr api v1 config`, in
// the seed's order.
var SectionNames = []string{"role", "failover", "core", "mysql", "pgsql", "file", "watchdog", "deviceManagement", "states"}

// Runtime is what the API sections report beside the configuration: the
// role, the last failover type and the watchdog services' states.
type Runtime struct {
	Role string
	// Failover is active_to_standby, standby_to_active or empty.
	Failover string
	// States is the seed's states section; nil when the watchdog never ran.
	States map[string]ServiceState
}

// ServiceState is one entry of the seed's states section.
type ServiceState struct {
	Progress string         `json:"progress"`
	Msg      StateMsg       `json:"msg"`
	Service  map[string]any `json:"service"`
}

// StateMsg is the last message a watchdog service reported.
type StateMsg struct {
	Service     string         `json:"service"`
	Description string         `json:"description"`
	State       bool           `json:"state"`
	Force       bool           `json:"force"`
	Progress    string         `json:"progress"`
	Payload     map[string]any `json:"payload"`
	Time        string         `json:"time"`
}

// SeedTime formats t as the seed's states section does.
func SeedTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05+00:00") }

type apiCore struct {
	PeerVIP                string `json:"peerVip"`
	AdminPass              string `json:"adminPass"`
	SCPTimeout             int    `json:"scpTimeout"`
	PeerLoadBalancerNodes  string `json:"peerLoadBalancerNodes"`
	PeerBusinessLogicNodes string `json:"peerBusinessLogicNodes"`
	PeerDeviceMgtIPs       string `json:"peerDeviceMgtIps"`
}

type apiMySQL struct {
	HasDedicatedDB bool   `json:"hasDedicatedDb"`
	PeerVIP        string `json:"peerVip"`
	PeerNodes      string `json:"peerNodes"`
}

type apiPgSQL struct {
	HasFmpm     bool   `json:"hasFmpm"`
	PeerFmpmVIP string `json:"peerFmpmVip"`
	PeerNodes   string `json:"peerNodes"`
}

type apiSchedule struct {
	MaxCount   *int   `json:"maxCount,omitempty"`
	HoursOfDay string `json:"hoursOfDay"`
	DaysOfWeek string `json:"daysOfWeek"`
}

type apiFile struct {
	Backup  apiSchedule `json:"backup"`
	Restore apiSchedule `json:"restore"`
}

type apiWatchdog struct {
	Heartbeat struct {
		Retries  int `json:"retries"`
		Timeout  int `json:"timeout"`
		Interval int `json:"interval"`
	} `json:"heartbeat"`
	Notification struct {
		Email    string `json:"email"`
		Interval int    `json:"interval"`
	} `json:"notification"`
	FailureDetection struct {
		IsCustom  bool   `json:"isCustom"`
		Script    string `json:"script"`
		Threshold struct {
			Failover      float64 `json:"failover"`
			AdjustManaged float64 `json:"adjustManaged"`
			Warning       float64 `json:"warning"`
		} `json:"threshold"`
		WaitDuration string       `json:"waitDuration"`
		Arbiters     []apiArbiter `json:"arbiters"`
	} `json:"failureDetection"`
}

type apiArbiter struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	Host       string `json:"host"`
	Port       int    `json:"port"`
	PrivateKey string `json:"privateKey"`
}

type apiDeviceManagement struct {
	PeerNodes string `json:"peerNodes"`
	Nodes     string `json:"nodes"`
	IP        string `json:"ip"`
}

// APISections renders the named sections (all when names is empty) in the
// seed's JSON layout. Secrets are masked. An unknown name is an error that
// lists the known ones.
func (c *Config) APISections(rt Runtime, names ...string) (map[string]any, error) {
	if len(names) == 0 {
		names = SectionNames
	}
	out := make(map[string]any, len(names))
	for _, name := range names {
		name = strings.TrimSpace(name)
		if name == "psql" { // the seed's example output uses this spelling
			name = "pgsql"
		}
		if !slices.Contains(SectionNames, name) {
			return nil, fmt.Errorf("unknown section %q (known: %s)", name, strings.Join(SectionNames, ", "))
		}
		switch name {
		case "role":
			out[name] = rt.Role
		case "failover":
			out[name] = rt.Failover
		case "core":
			out[name] = apiCore{
				PeerVIP:                c.Core.PeerVIP,
				AdminPass:              c.Core.AdminPass.String(),
				SCPTimeout:             seconds(c.Core.SCPTimeout),
				PeerLoadBalancerNodes:  c.Core.PeerLoadBalancerNodes.String(),
				PeerBusinessLogicNodes: c.Core.PeerBusinessLogicNodes.String(),
				PeerDeviceMgtIPs:       c.Core.PeerDeviceMgtIPs.String(),
			}
		case "mysql":
			out[name] = apiMySQL{c.MySQL.HasDedicatedDB, c.MySQL.PeerVIP, c.MySQL.PeerNodes.String()}
		case "pgsql":
			out[name] = apiPgSQL{c.PgSQL.HasFmpm, c.PgSQL.PeerFmpmVIP, c.PgSQL.PeerNodes.String()}
		case "file":
			maxCount := c.File.Backup.MaxCount
			out[name] = apiFile{
				Backup:  apiSchedule{MaxCount: &maxCount, HoursOfDay: c.File.Backup.HoursOfDay, DaysOfWeek: c.File.Backup.DaysOfWeek},
				Restore: apiSchedule{HoursOfDay: c.File.Restore.HoursOfDay, DaysOfWeek: c.File.Restore.DaysOfWeek},
			}
		case "watchdog":
			out[name] = c.apiWatchdog()
		case "deviceManagement":
			dm := c.DeviceManagement
			out[name] = apiDeviceManagement{dm.PeerNodes.String(), dm.Nodes.String(), dm.IP}
		case "states":
			if rt.States != nil {
				out[name] = rt.States
			}
		}
	}
	return out, nil
}

func (c *Config) apiWatchdog() apiWatchdog {
	var w apiWatchdog
	hb := c.Watchdog.Heartbeat
	w.Heartbeat.Retries = hb.Retries
	w.Heartbeat.Timeout = seconds(hb.Timeout)
	w.Heartbeat.Interval = seconds(hb.Interval)
	w.Notification.Email = c.Watchdog.Notification.Email.String()
	w.Notification.Interval = seconds(c.Watchdog.Notification.Interval)
	fd := c.Watchdog.FailureDetection
	w.FailureDetection.IsCustom = fd.IsCustom
	w.FailureDetection.Script = fd.Script
	w.FailureDetection.Threshold.Failover = fd.Threshold.Failover
	w.FailureDetection.Threshold.AdjustManaged = fd.Threshold.AdjustManaged
	w.FailureDetection.Threshold.Warning = fd.Threshold.Warning
	w.FailureDetection.WaitDuration = shortDuration(fd.WaitDuration.D())
	w.FailureDetection.Arbiters = []apiArbiter{}
	for _, a := range fd.Arbiters {
		w.FailureDetection.Arbiters = append(w.FailureDetection.Arbiters, apiArbiter{
			Username: a.Username, Password: a.Password.String(), Host: a.Host, Port: a.Port, PrivateKey: a.PrivateKey,
		})
	}
	return w
}

func seconds(d Duration) int { return int(d.D() / time.Second) }

// shortDuration prints 8h rather than Go's 8h0m0s, as the seed does.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
