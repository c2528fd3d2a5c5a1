module github.com/drwatch/drwatch/services/arbiter

go 1.26.0

replace github.com/drwatch/drwatch/cmd/drwatch => ../../cmd/drwatch

replace github.com/drwatch/drwatch/pkg/bus => ../../pkg/bus

replace github.com/drwatch/drwatch/pkg/config => ../../pkg/config

replace github.com/drwatch/drwatch/pkg/events => ../../pkg/events

replace github.com/drwatch/drwatch/pkg/service => ../../pkg/service

replace github.com/drwatch/drwatch/services/dbmonitor => ../dbmonitor

replace github.com/drwatch/drwatch/services/filesync => ../filesync

replace github.com/drwatch/drwatch/services/heartbeat => ../heartbeat

replace github.com/drwatch/drwatch/services/notifier => ../notifier

replace github.com/drwatch/drwatch/services/orchestrator => ../orchestrator

require (
	github.com/google/go-cmp v0.7.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.60.0 // indirect
)
