# Conveniences; the README's two commands are what matter.
.PHONY: test run-a run-b schemas modules build

test:
	./scripts/test.sh

run-a:
	go run ./cmd/drwatch run -config deployments/local/site-a.yaml

run-b:
	go run ./cmd/drwatch run -config deployments/local/site-b.yaml

build:
	CGO_ENABLED=0 go build -o bin/drwatch ./cmd/drwatch

schemas:
	go test ./pkg/events -update

modules:
	./scripts/sync-modules.sh
