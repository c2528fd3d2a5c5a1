#!/usr/bin/env bash
# images.sh builds every container image of drwatch's example deployment and
# end-to-end suite, from this repository alone: no registry is needed.
#
#   drwatch   the drwatch binary and the six standalone services, FROM scratch
#   client    the example's tools (writer, mailsink, gensecrets), FROM scratch
#   base      Debian bookworm (debootstrap) with MariaDB, PostgreSQL 15,
#             OpenSSH, iproute2, iptables: the userland of the images below
#   mariadb   base + an entrypoint that makes a GTID primary or replica
#   postgres  base + an entrypoint that makes a primary or streaming standby,
#             and dbmonitor from the drwatch image (built first) beside it
#   arbiter   base + sshd with client keepalives (see deployments/README.md)
#   node      base idling: owns a site's network namespace (and the VIP)
#
# Usage: images.sh [all | base | base-tag | IMAGE...]  (IMAGE: drwatch client
# mariadb postgres arbiter node)
#
# Every image name can be overridden: DRWATCH_IMAGE_{DRWATCH,CLIENT,MARIADB,
# POSTGRES,ARBITER,NODE}. DRWATCH_IMAGE_BASE replaces the Debian base (any
# Debian/Ubuntu image with the packages of deployments/images/base.packages,
# e.g. one built from official images); then debootstrap is not run.
#
# The base is tagged with a hash of its package list and of its recipe
# (the build_base function below) and is rebuilt only when either changes;
# the other images are docker builds whose layers are cached by content.
# Prints each step's time. Needs root (debootstrap, chroot) for the base.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

IMG_DRWATCH=${DRWATCH_IMAGE_DRWATCH:-drwatch/drwatch:local}
IMG_CLIENT=${DRWATCH_IMAGE_CLIENT:-drwatch/client:local}
IMG_MARIADB=${DRWATCH_IMAGE_MARIADB:-drwatch/mariadb:local}
IMG_POSTGRES=${DRWATCH_IMAGE_POSTGRES:-drwatch/postgres:local}
IMG_ARBITER=${DRWATCH_IMAGE_ARBITER:-drwatch/arbiter:local}
IMG_NODE=${DRWATCH_IMAGE_NODE:-drwatch/node:local}

log() { printf 'images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# timed NAME CMD...: runs CMD and prints how long it took.
timed() {
	local name=$1 start end; shift
	start=$(date +%s.%N)
	"$@"
	end=$(date +%s.%N)
	awk -v n="$name" -v s="$start" -v e="$end" 'BEGIN { printf "images: %-9s %6.1fs\n", n, e - s }' >&2
}

# build_base DIR TAG: debootstrap bookworm into DIR, install the packages,
# strip caches and the packaged default databases (the entrypoints make
# their own), import as TAG.
build_base() {
	local dir=$1 tag=$2 mirror pkgs
	[ "$(id -u)" = 0 ] || die "building the Debian base needs root (debootstrap, chroot); run as root or set DRWATCH_IMAGE_BASE"
	command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install -y debootstrap"
	# The mirror is the host's own: read it, never hard-code it.
	mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
	pkgs=$(grep -v '^#' deployments/images/base.packages | xargs)
	rm -rf "$dir"; mkdir -p "$dir"
	debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 || { tail -30 "$dir.log" >&2; die "debootstrap failed (log: $dir.log)"; }
	# Package scripts must not start servers inside the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"; chmod +x "$dir/usr/sbin/policy-rc.d"
	mount -t proc proc "$dir/proc"
	chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs >>"$dir.log" 2>&1 ||
		{ umount "$dir/proc"; tail -30 "$dir.log" >&2; die "apt-get install in the chroot failed (log: $dir.log)"; }
	umount "$dir/proc"
	chroot "$dir" sh -c 'pg_dropcluster 15 main 2>/dev/null || true'
	rm -rf "$dir"/var/lib/mysql/* "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
		"$dir"/etc/ssh/ssh_host_* "$dir/usr/sbin/policy-rc.d" "$dir/etc/apt/sources.list" "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
	mkdir -p "$dir/run/sshd" "$dir/run/mysqld" "$dir/run/postgresql"
	chroot "$dir" chown mysql:mysql /run/mysqld /var/lib/mysql
	chroot "$dir" chown postgres:postgres /run/postgresql
	tar -C "$dir" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
	rm -rf "$dir" "$dir.log"
}

base_tag() {
	local h
	h=$( { cat deployments/images/base.packages; declare -f build_base; } | sha256sum | cut -c1-12)
	echo "drwatch/debian-base:$h"
}

# go_binaries DIR: static binaries of drwatch and of every service that has
# a standalone main, plus the client tools.
go_binaries() {
	local out=$1
	mkdir -p "$out"
	export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false"
	go build -trimpath -ldflags='-s -w' -o "$out/drwatch" ./cmd/drwatch
	for m in services/*/cmd/*/; do
		[ -f "$m/main.go" ] || continue
		go build -trimpath -ldflags='-s -w' -o "$out/$(basename "$m")" "./$m" || die "go build $m failed"
	done
}

client_binaries() {
	local out=$1
	mkdir -p "$out"
	(cd tests/e2e && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false" go build -trimpath -ldflags='-s -w' -o "$out/" ./cmd/...)
}

docker_build() {
	local tag=$1 ctx=$2; shift 2
	local out
	out=$(docker build -t "$tag" "$@" "$ctx" 2>&1) || { echo "$out" >&2; die "docker build $tag failed"; }
}

# ensure_base prints the base image's tag, building it when missing.
ensure_base() {
	local base=${DRWATCH_IMAGE_BASE:-$(base_tag)}
	if have_image "$base"; then
		log "base      cached ($base)"
	elif [ -n "${DRWATCH_IMAGE_BASE:-}" ]; then
		die "DRWATCH_IMAGE_BASE=$base is not present locally (docker pull it or unset it)"
	else
		local dir; dir=$(mktemp -d /tmp/drwatch-rootfs.XXXXXX)
		timed base build_base "$dir/rootfs" "$base"
		rm -rf "$dir"
	fi
	echo "$base"
}

# wanted NAME: whether NAME is among the images asked for.
wanted() { [ ${#only[@]} = 0 ] || [[ " ${only[*]} " == *" $1 "* ]]; }

main() {
	local t0 base name img args
	t0=$(date +%s)
	work=$(mktemp -d /tmp/drwatch-images.XXXXXX)
	trap 'rm -rf "$work"' EXIT

	if wanted drwatch; then
		cp -r deployments/images/drwatch "$work/drwatch-ctx"
		mkdir -p "$work/drwatch-ctx/rootfs/tmp" "$work/drwatch-ctx/rootfs/var/lib/drwatch" "$work/drwatch-ctx/rootfs/etc/drwatch"
		chmod 1777 "$work/drwatch-ctx/rootfs/tmp"
		timed go-build go_binaries "$work/drwatch-ctx/bin"
		timed drwatch docker_build "$IMG_DRWATCH" "$work/drwatch-ctx"
	fi
	if wanted client; then
		cp -r deployments/images/client "$work/client-ctx"
		mkdir -p "$work/client-ctx/rootfs/tmp" "$work/client-ctx/rootfs/out"; chmod 1777 "$work/client-ctx/rootfs/tmp"
		timed go-tools client_binaries "$work/client-ctx/bin"
		timed client docker_build "$IMG_CLIENT" "$work/client-ctx"
	fi
	for name in mariadb postgres arbiter node; do
		wanted "$name" || continue
		[ -n "${base:-}" ] || base=$(ensure_base)
		case $name in
		mariadb) img=$IMG_MARIADB ;; postgres) img=$IMG_POSTGRES ;;
		arbiter) img=$IMG_ARBITER ;; node) img=$IMG_NODE ;;
		esac
		args=(--build-arg "BASE=$base")
		if [ "$name" = postgres ]; then
			have_image "$IMG_DRWATCH" || die "the postgres image takes dbmonitor from $IMG_DRWATCH: build it first (images.sh drwatch postgres)"
			args+=(--build-arg "DRWATCH=$IMG_DRWATCH")
		fi
		timed "$name" docker_build "$img" "deployments/images/$name" "${args[@]}"
	done
	log "images ready in $(($(date +%s) - t0))s"
}

only=()
case ${1:-all} in
all) main ;;
drwatch | client | mariadb | postgres | arbiter | node) only=("$@"); main ;;
base) ensure_base >/dev/null ;;
base-tag) echo "${DRWATCH_IMAGE_BASE:-$(base_tag)}" ;;
*) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; echo "usage: $0 [all|base|base-tag|IMAGE...]" >&2; exit 2 ;;
esac
