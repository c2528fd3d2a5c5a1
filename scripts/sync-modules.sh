#!/usr/bin/env bash
# Points every module of the workspace at its siblings with replace
# directives, so each module also builds with GOWORK=off, then tidies.
set -euo pipefail
cd "$(dirname "$0")/.."
mods=$(go list -m -f '{{.Dir}}')
top=$(pwd)
for dir in $mods; do
  for dep in $mods; do
    [ "$dir" = "$dep" ] && continue
    path=$(awk '/^module/{print $2}' "$dep/go.mod")
    rel=$(realpath --relative-to="$dir" "$dep")
    (cd "$dir" && go mod edit -replace "$path=$rel")
  done
done
for dir in $mods; do (cd "$dir" && GOWORK=off GOFLAGS=-mod=mod go mod tidy); done
echo "modules synced: $(echo "$mods" | wc -l)"
