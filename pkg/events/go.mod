module github.com/drwatch/drwatch/pkg/events

go 1.26.0

require (
	github.com/go-playground/validator/v10 v10.30.6
	github.com/google/go-cmp v0.7.0
	github.com/google/uuid v1.6.0
)

require (
	github.com/gabriel-vasile/mimetype v1.4.16 // indirect
	github.com/go-playground/locales v0.14.2 // indirect
	github.com/go-playground/universal-translator v0.18.2 // indirect
	github.com/leodido/go-urn v1.5.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)

replace github.com/drwatch/drwatch/cmd/drwatch => ../../cmd/drwatch

replace github.com/drwatch/drwatch/pkg/bus => ../bus

replace github.com/drwatch/drwatch/pkg/config => ../config

replace github.com/drwatch/drwatch/pkg/service => ../service

replace github.com/drwatch/drwatch/services/arbiter => ../../services/arbiter

replace github.com/drwatch/drwatch/services/dbmonitor => ../../services/dbmonitor

replace github.com/drwatch/drwatch/services/filesync => ../../services/filesync

replace github.com/drwatch/drwatch/services/heartbeat => ../../services/heartbeat

replace github.com/drwatch/drwatch/services/notifier => ../../services/notifier

replace github.com/drwatch/drwatch/services/orchestrator => ../../services/orchestrator

replace github.com/drwatch/drwatch/bench => ../../bench

replace github.com/drwatch/drwatch/pkg/checker => ../checker

replace github.com/drwatch/drwatch/pkg/ping => ../ping

replace github.com/drwatch/drwatch/tests/e2e => ../../tests/e2e

replace github.com/drwatch/drwatch/pkg/pki => ../pki

replace github.com/drwatch/drwatch/pkg/sshsim => ../sshsim

replace github.com/drwatch/drwatch/pkg/pair => ../pair
