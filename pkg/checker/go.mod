module github.com/drwatch/drwatch/pkg/checker

go 1.26.0

require github.com/google/go-cmp v0.7.0

replace github.com/drwatch/drwatch/bench => ../../bench

replace github.com/drwatch/drwatch/cmd/drwatch => ../../cmd/drwatch

replace github.com/drwatch/drwatch/pkg/bus => ../bus

replace github.com/drwatch/drwatch/pkg/config => ../config

replace github.com/drwatch/drwatch/pkg/events => ../events

replace github.com/drwatch/drwatch/pkg/ping => ../ping

replace github.com/drwatch/drwatch/pkg/service => ../service

replace github.com/drwatch/drwatch/services/arbiter => ../../services/arbiter

replace github.com/drwatch/drwatch/services/dbmonitor => ../../services/dbmonitor

replace github.com/drwatch/drwatch/services/filesync => ../../services/filesync

replace github.com/drwatch/drwatch/services/heartbeat => ../../services/heartbeat

replace github.com/drwatch/drwatch/services/notifier => ../../services/notifier

replace github.com/drwatch/drwatch/services/orchestrator => ../../services/orchestrator

replace github.com/drwatch/drwatch/tests/e2e => ../../tests/e2e

replace github.com/drwatch/drwatch/pkg/sshsim => ../sshsim

replace github.com/drwatch/drwatch/pkg/pki => ../pki

replace github.com/drwatch/drwatch/pkg/pair => ../pair
