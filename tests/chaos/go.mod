module github.com/drwatch/drwatch/tests/chaos

go 1.26.0

replace github.com/drwatch/drwatch/pkg/checker => ../../pkg/checker

replace github.com/drwatch/drwatch/pkg/events => ../../pkg/events

require (
	github.com/drwatch/drwatch/pkg/checker v0.0.0-00010101000000-000000000000
	github.com/drwatch/drwatch/pkg/events v0.0.0-00010101000000-000000000000
	github.com/go-sql-driver/mysql v1.10.1
	github.com/google/go-cmp v0.7.0
	github.com/vishvananda/netlink v1.3.1
	github.com/vishvananda/netns v0.0.5
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/gabriel-vasile/mimetype v1.4.16 // indirect
	github.com/go-playground/locales v0.14.2 // indirect
	github.com/go-playground/universal-translator v0.18.2 // indirect
	github.com/go-playground/validator/v10 v10.30.6 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/leodido/go-urn v1.5.0 // indirect
	github.com/nats-io/nkeys v0.4.16
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
