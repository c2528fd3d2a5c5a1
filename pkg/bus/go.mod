module github.com/drwatch/drwatch/pkg/bus

go 1.26.0

require (
	github.com/drwatch/drwatch/pkg/events v0.0.0-00010101000000-000000000000
	github.com/google/go-cmp v0.7.0
	github.com/nats-io/nats-server/v2 v2.15.2
	github.com/nats-io/nats.go v1.55.0
	github.com/nats-io/nkeys v0.4.16
	github.com/prometheus/client_golang v1.25.0
	go.opentelemetry.io/otel v1.47.0
	go.opentelemetry.io/otel/sdk v1.47.0
	go.opentelemetry.io/otel/trace v1.47.0
)

require (
	github.com/antithesishq/antithesis-sdk-go v0.8.0-default-no-op // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/gabriel-vasile/mimetype v1.4.16 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/go-playground/locales v0.14.2 // indirect
	github.com/go-playground/universal-translator v0.18.2 // indirect
	github.com/go-playground/validator/v10 v10.30.6 // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/leodido/go-urn v1.5.0 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/nats-io/jwt/v2 v2.8.2 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/drwatch/drwatch/cmd/drwatch => ../../cmd/drwatch

replace github.com/drwatch/drwatch/pkg/config => ../config

replace github.com/drwatch/drwatch/pkg/events => ../events

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

replace github.com/drwatch/drwatch/pkg/sshsim => ../sshsim

replace github.com/drwatch/drwatch/pkg/pki => ../pki

replace github.com/drwatch/drwatch/pkg/pair => ../pair
