module github.com/drwatch/drwatch/bench

go 1.26.0

replace github.com/drwatch/drwatch/cmd/drwatch => ../cmd/drwatch

replace github.com/drwatch/drwatch/pkg/bus => ../pkg/bus

replace github.com/drwatch/drwatch/pkg/config => ../pkg/config

replace github.com/drwatch/drwatch/pkg/events => ../pkg/events

replace github.com/drwatch/drwatch/pkg/service => ../pkg/service

replace github.com/drwatch/drwatch/services/arbiter => ../services/arbiter

replace github.com/drwatch/drwatch/services/dbmonitor => ../services/dbmonitor

replace github.com/drwatch/drwatch/services/filesync => ../services/filesync

replace github.com/drwatch/drwatch/services/heartbeat => ../services/heartbeat

replace github.com/drwatch/drwatch/services/notifier => ../services/notifier

replace github.com/drwatch/drwatch/services/orchestrator => ../services/orchestrator

require (
	github.com/google/go-cmp v0.7.0
	github.com/jackc/pgx/v5 v5.12.0
	github.com/nats-io/nats.go v1.55.0
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/sys v0.48.0
)

require (
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/klauspost/compress v1.20.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/text v0.42.0 // indirect
)

replace github.com/drwatch/drwatch/pkg/checker => ../pkg/checker

replace github.com/drwatch/drwatch/pkg/ping => ../pkg/ping

replace github.com/drwatch/drwatch/tests/e2e => ../tests/e2e

replace github.com/drwatch/drwatch/pkg/pki => ../pkg/pki

replace github.com/drwatch/drwatch/pkg/sshsim => ../pkg/sshsim

replace github.com/drwatch/drwatch/pkg/pair => ../pkg/pair
