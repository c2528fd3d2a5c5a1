#!/usr/bin/env bash
# Runs drwatch's whole test suite: installs and starts what the integration
# tests need (database servers from Debian's packages), then vets and tests
# every module of the workspace. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

export TESTCONTAINERS_RYUK_DISABLED=true
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

# strace proves the log is fsynced on every write (pkg/bus sync_test.go);
# debootstrap builds the Debian base of the end-to-end suite's images
# (scripts/images.sh); iptables queues packets for the bench's delayer test
# (bench/internal/nfqdelay); sshd runs the chaos harness's arbiters
# (tests/chaos).
missing=()
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get install -y "${missing[@]}" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
fi

if [ -x scripts/testdb.sh ]; then
  scripts/testdb.sh start
  eval "$(scripts/testdb.sh env)"
fi

pkgs=$(go list -f '{{.Dir}}/...' -m)
echo "== gofmt"
unformatted=$(gofmt -l $(go list -f '{{.Dir}}' -m) | sort -u)
if [ -n "$unformatted" ]; then
  printf 'not gofmt-formatted (run gofmt -w on them):\n%s\n' "$unformatted" >&2
  exit 1
fi
echo "== go vet"
go vet $pkgs
echo "== go test"
go test -count=1 -timeout 35m $pkgs
