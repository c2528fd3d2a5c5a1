#!/bin/bash
# PostgreSQL 15 for the example sites. On the first start (empty PGDATA) it
# initialises the cluster as DB_ROLE:
#   primary  initdb, accounts, the "app" database
#   standby  pg_basebackup -R from DB_PRIMARY_HOST (waits for it), then
#            streams from it
# Later starts only start the server: promotion and re-pointing are
# drwatch's business (dbmonitor).
#
# With DRWATCH_CONFIG (a site.yaml) the server runs under pg_ctl and this
# script keeps drwatch's dbmonitor running beside it (restarted a second
# after it exits, e.g. while the site's NATS is not up yet): dbmonitor stops
# and starts the server itself to return a former primary to standby
# (pg_rewind), which must not end the container. DRWATCH_NATS is its NATS
# (nats://127.0.0.1:4222: drwatch's embedded server in the same namespace).
# Environment: DB_ROLE, DB_PRIMARY_HOST, DB_PRIMARY_PORT (5432),
# DB_ADMIN_USER/DB_ADMIN_PASSWORD (drwatch/drwatch), DB_REPL_USER/
# DB_REPL_PASSWORD (replication/repl), DB_APP_USER/DB_APP_PASSWORD (app/app).
# Example credentials: change them for anything real.
set -euo pipefail
role=${DB_ROLE:-primary}
admin=${DB_ADMIN_USER:-drwatch} adminpw=${DB_ADMIN_PASSWORD:-drwatch}
repl=${DB_REPL_USER:-replication} replpw=${DB_REPL_PASSWORD:-repl}
app=${DB_APP_USER:-app} apppw=${DB_APP_PASSWORD:-app}
bin=/usr/lib/postgresql/15/bin
export PGDATA=${PGDATA:-/var/lib/postgresql/data}
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql; chmod 700 "$PGDATA"
if [ ! -f "$PGDATA/PG_VERSION" ]; then
	echo "drwatch-postgres: initialising $PGDATA as $role"
	if [ "$role" = primary ]; then
		echo "$adminpw" >/tmp/pw; chown postgres /tmp/pw
		as_pg "$bin/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile=/tmp/pw -E UTF8 --locale=C.UTF-8 >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log; exit 1; }
		rm -f /tmp/pw
		cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 256MB
wal_log_hints = on
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 1s
wal_receiver_timeout = 10s
wal_sender_timeout = 10s
shared_buffers = 64MB
CONF
		cat >>"$PGDATA/pg_hba.conf" <<CONF
host replication $repl 0.0.0.0/0 scram-sha-256
host all all 0.0.0.0/0 scram-sha-256
CONF
		as_pg "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
		as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -U postgres <<SQL
CREATE ROLE $admin SUPERUSER LOGIN PASSWORD '$adminpw';
CREATE ROLE $repl REPLICATION LOGIN PASSWORD '$replpw';
CREATE ROLE $app LOGIN PASSWORD '$apppw';
CREATE DATABASE app OWNER $app;
SQL
		as_pg "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
	else
		host=${DB_PRIMARY_HOST:?DB_PRIMARY_HOST is required for a standby}
		until as_pg "$bin/pg_isready" -q -h "$host" -p "${DB_PRIMARY_PORT:-5432}"; do echo "drwatch-postgres: waiting for the primary $host"; sleep 1; done
		as_pg env PGPASSWORD="$replpw" "$bin/pg_basebackup" -h "$host" -p "${DB_PRIMARY_PORT:-5432}" -U "$repl" -D "$PGDATA" -R -X stream -c fast
		# The password travels in primary_conninfo (written by -R); the
		# standby's own admin password is the primary's, copied with it.
	fi
fi
if [ -z "${DRWATCH_CONFIG:-}" ]; then
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$PGDATA"
fi
log=$PGDATA.pg_ctl.log # where dbmonitor's pg_ctl start writes too
as_pg "$bin/pg_ctl" -D "$PGDATA" -l "$log" -w -t 120 start
child=
stop() {
	[ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true
	as_pg "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop || true
	exit 0
}
trap stop TERM INT
while :; do
	/usr/local/bin/dbmonitor -config "$DRWATCH_CONFIG" -nats "${DRWATCH_NATS:-nats://127.0.0.1:4222}" &
	child=$!
	wait "$child" || echo "drwatch-postgres: dbmonitor exited ($?); restarting in 1 s" >&2
	child=
	sleep 1 &
	wait $! || true
done
