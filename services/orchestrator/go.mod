module github.com/drwatch/drwatch/services/orchestrator

go 1.26.0

replace github.com/drwatch/drwatch/cmd/drwatch => ../../cmd/drwatch

replace github.com/drwatch/drwatch/pkg/bus => ../../pkg/bus

replace github.com/drwatch/drwatch/pkg/config => ../../pkg/config

replace github.com/drwatch/drwatch/pkg/events => ../../pkg/events

replace github.com/drwatch/drwatch/pkg/service => ../../pkg/service

replace github.com/drwatch/drwatch/services/arbiter => ../arbiter

replace github.com/drwatch/drwatch/services/dbmonitor => ../dbmonitor

replace github.com/drwatch/drwatch/services/filesync => ../filesync

replace github.com/drwatch/drwatch/services/heartbeat => ../heartbeat

replace github.com/drwatch/drwatch/services/notifier => ../notifier

require (
	github.com/drwatch/drwatch/pkg/events v0.0.0-00010101000000-000000000000
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/sys v0.49.0
)

require (
	github.com/gabriel-vasile/mimetype v1.4.16 // indirect
	github.com/go-playground/locales v0.14.2 // indirect
	github.com/go-playground/universal-translator v0.18.2 // indirect
	github.com/go-playground/validator/v10 v10.30.6 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/leodido/go-urn v1.5.0 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
