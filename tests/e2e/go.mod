module github.com/drwatch/drwatch/tests/e2e

go 1.26.0

replace github.com/drwatch/drwatch/cmd/drwatch => ../../cmd/drwatch

replace github.com/drwatch/drwatch/pkg/bus => ../../pkg/bus

replace github.com/drwatch/drwatch/pkg/config => ../../pkg/config

replace github.com/drwatch/drwatch/pkg/events => ../../pkg/events

replace github.com/drwatch/drwatch/pkg/service => ../../pkg/service

replace github.com/drwatch/drwatch/services/arbiter => ../../services/arbiter

replace github.com/drwatch/drwatch/services/dbmonitor => ../../services/dbmonitor

replace github.com/drwatch/drwatch/services/filesync => ../../services/filesync

replace github.com/drwatch/drwatch/services/heartbeat => ../../services/heartbeat

replace github.com/drwatch/drwatch/services/notifier => ../../services/notifier

replace github.com/drwatch/drwatch/services/orchestrator => ../../services/orchestrator

require (
	github.com/go-sql-driver/mysql v1.10.1
	golang.org/x/crypto v0.58.0
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
