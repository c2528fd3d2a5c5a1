module github.com/drwatch/drwatch/cmd/drwatch

go 1.26

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
