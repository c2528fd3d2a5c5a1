#!/usr/bin/env bash
# testdb.sh starts the real databases drwatch's integration tests (and CI)
# run against: two MariaDB instances with GTID replication and two
# PostgreSQL 15 clusters with streaming replication, all on loopback.
#
#   scripts/testdb.sh start            install if missing, start (reuses healthy data dirs)
#   scripts/testdb.sh stop             stop all four
#   scripts/testdb.sh status           one line per instance
#   scripts/testdb.sh env              DSNs as shell exports for `go test`
#   scripts/testdb.sh reset            wipe and rebuild everything
#   scripts/testdb.sh heal mysql|pgsql rebuild replication primary -> replica
#   scripts/testdb.sh start-one NAME   start one instance (my1 my2 pg1 pg2)
#   scripts/testdb.sh stop-one NAME    stop one instance
#
# Replication runs over TLS with a test CA made here ($BASE/tls: ca.crt,
# one server certificate for 127.0.0.1 shared by the four servers):
# MariaDB replicas use MASTER_SSL=1 with the CA, PostgreSQL standbys
# sslmode=verify-ca. PostgreSQL runs with wal_log_hints=on so pg_rewind
# can turn a former primary back into a standby.
#
# Base directory: $DRWATCH_TESTDB_BASE (default /tmp/drwatch-testdb).
# Typical use: eval "$(scripts/testdb.sh start)"  (start prints the env too)
set -euo pipefail

BASE=${DRWATCH_TESTDB_BASE:-/tmp/drwatch-testdb}
MY1_PORT=${DRWATCH_TESTDB_MY1_PORT:-13306}
MY2_PORT=${DRWATCH_TESTDB_MY2_PORT:-13307}
PG1_PORT=${DRWATCH_TESTDB_PG1_PORT:-15432}
PG2_PORT=${DRWATCH_TESTDB_PG2_PORT:-15433}
PGBIN=${DRWATCH_TESTDB_PGBIN:-/usr/lib/postgresql/15/bin}
# Test-only credentials: the servers listen on 127.0.0.1 only.
ADMIN_USER=drwatch ADMIN_PASS=drwatch REPL_USER=repl REPL_PASS=repl

# Bumped when the layout changes: an older $BASE is rebuilt on start.
LAYOUT=2
TLS_DIR=$BASE/tls

log() { echo "testdb: $*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (it installs packages and runs servers as the mysql and postgres users)"; }

install_packages() {
	local missing=()
	command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server mariadb-client mariadb-backup)
	[ -x "$PGBIN/initdb" ] || missing+=(postgresql postgresql-contrib)
	[ ${#missing[@]} = 0 ] && return 0
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
		apt-get update >&2
		apt-get install -y --no-install-recommends "${missing[@]}" >&2
	fi
}

# ---------- TLS ----------

# tls_make creates the test CA and a server certificate for 127.0.0.1,
# with copies of the key owned by each server's user (both refuse keys
# others can read).
tls_make() {
	[ -f "$TLS_DIR/ca.crt" ] && [ -f "$TLS_DIR/pg/server.key" ] && return 0
	command -v openssl >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssl >&2; }
	rm -rf "$TLS_DIR"; mkdir -p "$TLS_DIR/my" "$TLS_DIR/pg"
	(
		cd "$TLS_DIR"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
			-subj "/O=drwatch test/CN=drwatch test CA" -keyout ca.key -out ca.crt 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-subj "/O=drwatch test/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >ext.cnf
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
			-extfile ext.cnf -out server.crt 2>/dev/null
	) || die "openssl could not make the test certificates"
	for d in my pg; do cp "$TLS_DIR/server.crt" "$TLS_DIR/server.key" "$TLS_DIR/$d/"; done
	chown -R mysql:mysql "$TLS_DIR/my"; chown -R postgres:postgres "$TLS_DIR/pg"
	chmod 600 "$TLS_DIR"/my/server.key "$TLS_DIR"/pg/server.key "$TLS_DIR/ca.key" "$TLS_DIR/server.key"
	chmod 644 "$TLS_DIR/ca.crt"; chmod 755 "$TLS_DIR" "$TLS_DIR/my" "$TLS_DIR/pg"
}

# ---------- MariaDB ----------

my_dir() { echo "$BASE/$1"; }
my_port() { case $1 in my1) echo "$MY1_PORT" ;; my2) echo "$MY2_PORT" ;; esac; }
my_sid() { case $1 in my1) echo 1 ;; my2) echo 2 ;; esac; }
my_sock() { echo "$(my_dir "$1")/mysqld.sock"; }
# my NAME [args...]: a root client over the instance's socket.
my() { local n=$1; shift; mariadb --no-defaults -uroot --socket="$(my_sock "$n")" "$@"; }
my_alive() { mariadb-admin --no-defaults -uroot --socket="$(my_sock "$1")" ping >/dev/null 2>&1; }

my_init() {
	local n=$1 d; d=$(my_dir "$n")
	rm -rf "$d"; mkdir -p "$d/data"
	cat >"$d/my.cnf" <<EOF
[mariadbd]
datadir=$d/data
socket=$(my_sock "$n")
pid-file=$d/mysqld.pid
log-error=$d/error.log
bind-address=127.0.0.1
port=$(my_port "$n")
server_id=$(my_sid "$n")
log_bin=$d/data/binlog
log_slave_updates=ON
binlog_format=ROW
gtid_strict_mode=ON
gtid_domain_id=0
slave_net_timeout=4
skip-name-resolve
innodb_buffer_pool_size=32M
innodb_log_file_size=16M
performance_schema=OFF
max_connections=200
ssl_ca=$TLS_DIR/ca.crt
ssl_cert=$TLS_DIR/my/server.crt
ssl_key=$TLS_DIR/my/server.key
EOF
	chown -R mysql:mysql "$d"
	mariadb-install-db --defaults-file="$d/my.cnf" --user=mysql --auth-root-authentication-method=socket --skip-test-db >"$d/install.log" 2>&1 || { cat "$d/install.log" >&2; die "mariadb-install-db $n failed"; }
}

my_start() {
	local n=$1 d; d=$(my_dir "$n")
	my_alive "$n" && return 0
	[ -f "$d/my.cnf" ] || my_init "$n"
	mkdir -p "$d"; chown mysql:mysql "$d"
	# Run detached from our process group so `go test` timeouts do not kill it.
	setsid mariadbd --defaults-file="$d/my.cnf" --user=mysql </dev/null >>"$d/stdout.log" 2>&1 &
	for _ in $(seq 1 100); do my_alive "$n" && return 0; sleep 0.1; done
	tail -20 "$d/error.log" >&2 || true
	die "mariadb $n did not start on port $(my_port "$n")"
}

my_stop() {
	local n=$1 d pid; d=$(my_dir "$n")
	[ -f "$d/mysqld.pid" ] || return 0
	pid=$(cat "$d/mysqld.pid" 2>/dev/null || true)
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
}

my_users() {
	# sql_log_bin=0: accounts are made on each server on its own, so they
	# never become GTIDs the other side lacks (which would look errant).
	my "$1" -e "SET SESSION sql_log_bin=0;
CREATE USER IF NOT EXISTS '$ADMIN_USER'@'127.0.0.1' IDENTIFIED BY '$ADMIN_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$ADMIN_USER'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS '$REPL_USER'@'127.0.0.1' IDENTIFIED BY '$REPL_PASS';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '$REPL_USER'@'127.0.0.1';
ALTER USER '$REPL_USER'@'127.0.0.1' REQUIRE SSL;"
}

my_change_master() {
	my my2 -e "STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$MY1_PORT,
MASTER_USER='$REPL_USER', MASTER_PASSWORD='$REPL_PASS', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos,
MASTER_SSL=1, MASTER_SSL_CA='$TLS_DIR/ca.crt', MASTER_SSL_VERIFY_SERVER_CERT=1;
START SLAVE;"
}

my_healthy() {
	my_alive my1 && my_alive my2 || return 1
	local st; st=$(my my2 -e "SHOW SLAVE STATUS\G" 2>/dev/null) || return 1
	grep -q "Slave_IO_Running: Yes" <<<"$st" && grep -q "Slave_SQL_Running: Yes" <<<"$st" &&
		grep -q "Master_Port: $MY1_PORT" <<<"$st" && grep -q "Master_SSL_Allowed: Yes" <<<"$st" || return 1
	[ "$(my my1 -N -e 'SELECT @@read_only')" = 0 ] || return 1
	[ -z "$(my my1 -N -e 'SHOW SLAVE STATUS')" ]
}

# my_heal copies my1 into my2 with a dump that records the GTID position,
# then replicates from there: the same full resync dbmonitor performs.
my_heal() {
	my_start my1; my_start my2
	my my1 -e "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=OFF;"
	my my2 -e "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=OFF;"
	local dbs
	dbs=$(my my2 -N -e "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'dbt\\_%'")
	for db in $dbs; do my my2 -e "SET SESSION sql_log_bin=0; DROP DATABASE \`$db\`"; done
	my my2 -e "RESET MASTER;"
	dbs=$(my my1 -N -e "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'dbt\\_%'")
	if [ -n "$dbs" ]; then
		{ echo "SET SESSION sql_log_bin=0;"; mariadb-dump --no-defaults -uroot --socket="$(my_sock my1)" --single-transaction --gtid --master-data=2 --databases $dbs; } | my my2
	fi
	local pos; pos=$(my my1 -N -e "SELECT @@gtid_binlog_pos")
	my my2 -e "SET GLOBAL gtid_slave_pos='$pos';"
	my_change_master
	my my2 -e "SET GLOBAL read_only=ON;"
	for _ in $(seq 1 50); do my_healthy && return 0; sleep 0.1; done
	my my2 -e "SHOW SLAVE STATUS\G" >&2
	die "mariadb replication did not become healthy"
}

mysql_up() {
	my_start my1; my_start my2
	my_users my1; my_users my2
	if ! my_healthy; then log "mariadb: setting up replication my1:$MY1_PORT -> my2:$MY2_PORT"; my_heal; fi
}

# ---------- PostgreSQL ----------

pg_dir() { echo "$BASE/$1"; }
pg_port() { case $1 in pg1) echo "$PG1_PORT" ;; pg2) echo "$PG2_PORT" ;; esac; }
as_pg() { runuser -u postgres -- "$@"; }
pg() { local n=$1; shift; as_pg "$PGBIN/psql" -X -q -h "$BASE/run" -p "$(pg_port "$n")" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
pg_alive() { as_pg "$PGBIN/pg_isready" -q -h "$BASE/run" -p "$(pg_port "$1")" >/dev/null 2>&1; }

pg_ctl_start() {
	local n=$1 d; d=$(pg_dir "$n")/data
	pg_alive "$n" && return 0
	# A stale pid file after a crash blocks start; the port check above says
	# nothing runs.
	as_pg "$PGBIN/pg_ctl" -D "$d" -l "$(pg_dir "$n")/server.log" -w -t 30 \
		-o "-p $(pg_port "$n") -k $BASE/run -c listen_addresses=127.0.0.1" start >&2 ||
		{ tail -20 "$(pg_dir "$n")/server.log" >&2; die "postgresql $n did not start"; }
}

pg_stop() {
	local d; d=$(pg_dir "$1")/data
	[ -f "$d/postmaster.pid" ] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$d" -m fast -w -t 30 stop >&2 || true
}

pg_init_primary() {
	local d; d=$(pg_dir pg1)
	rm -rf "$d"; mkdir -p "$d"; chown postgres:postgres "$d"
	local pw; pw=$(mktemp); echo "$ADMIN_PASS" >"$pw"; chown postgres "$pw"
	as_pg "$PGBIN/initdb" -D "$d/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile="$pw" -E UTF8 --locale=C.UTF-8 >"$d/initdb.log" 2>&1 ||
		{ rm -f "$pw"; cat "$d/initdb.log" >&2; die "initdb failed"; }
	rm -f "$pw"
	cat >>"$d/data/postgresql.conf" <<EOF
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 16MB
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 1s
wal_receiver_timeout = 5s
wal_sender_timeout = 5s
max_wal_size = 64MB
min_wal_size = 32MB
shared_buffers = 32MB
fsync = off
synchronous_commit = on
wal_log_hints = on
ssl = on
ssl_cert_file = '$TLS_DIR/pg/server.crt'
ssl_key_file = '$TLS_DIR/pg/server.key'
ssl_ca_file = '$TLS_DIR/ca.crt'
EOF
	# "host" accepts TLS and plain: the standby's sslmode=verify-ca makes the
	# link encrypted, and a test can still make a plain one for the "tls" check.
	cat >>"$d/data/pg_hba.conf" <<EOF
host replication $REPL_USER 127.0.0.1/32 scram-sha-256
EOF
}

pg_users() {
	pg pg1 -c "DO \$\$BEGIN
IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='$ADMIN_USER') THEN CREATE ROLE $ADMIN_USER SUPERUSER LOGIN PASSWORD '$ADMIN_PASS'; END IF;
IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='$REPL_USER') THEN CREATE ROLE $REPL_USER REPLICATION LOGIN PASSWORD '$REPL_PASS'; END IF;
END\$\$;"
}

pg_healthy() {
	pg_alive pg1 && pg_alive pg2 || return 1
	[ "$(pg pg1 -tA -c 'SELECT pg_is_in_recovery()')" = f ] || return 1
	[ "$(pg pg2 -tA -c 'SELECT pg_is_in_recovery()')" = t ] || return 1
	[ "$(pg pg2 -tA -c "SELECT count(*) FROM pg_stat_wal_receiver WHERE status='streaming' AND sender_port=$PG1_PORT")" = 1 ] || return 1
	[ "$(pg pg1 -tA -c "SELECT count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE s.ssl")" -ge 1 ] || return 1
	[ "$(pg pg1 -tA -c "SHOW default_transaction_read_only")" = off ]
}

# pg_heal rebuilds the standby from the primary with pg_basebackup -R.
pg_heal() {
	pg_ctl_start pg1
	# pg1 left a standby (a test returned it to standby of pg2): promote it
	# back; pg2 is rebuilt from it below.
	if [ "$(pg pg1 -tA -c 'SELECT pg_is_in_recovery()')" = t ]; then
		pg pg1 -tA -c "SELECT pg_promote(true, 60)" >/dev/null
	fi
	pg pg1 -c "ALTER SYSTEM RESET wal_keep_size" >/dev/null
	pg pg1 -c "ALTER SYSTEM RESET default_transaction_read_only" -c "SELECT pg_reload_conf()" >/dev/null
	pg_stop pg2
	local d; d=$(pg_dir pg2)
	rm -rf "$d"; mkdir -p "$d"; chown postgres:postgres "$d"
	# The password goes through the environment, not the command line; -R
	# writes it into primary_conninfo (postgresql.auto.conf, 0600).
	PGPASSWORD=$REPL_PASS as_pg "$PGBIN/pg_basebackup" -d "host=127.0.0.1 port=$PG1_PORT user=$REPL_USER application_name=drwatch sslmode=verify-full sslrootcert=$TLS_DIR/ca.crt" \
		-D "$d/data" -R -X stream -c fast --no-sync >&2 || die "pg_basebackup failed"
	pg_ctl_start pg2
	for _ in $(seq 1 100); do pg_healthy && return 0; sleep 0.1; done
	die "postgresql streaming replication did not become healthy"
}

pgsql_up() {
	mkdir -p "$BASE/run"; chown postgres:postgres "$BASE/run"
	if [ ! -f "$(pg_dir pg1)/data/PG_VERSION" ]; then pg_init_primary; fi
	pg_ctl_start pg1
	# A test that returned pg1 to standby and died leaves it in recovery
	# (and possibly fenced read-only): promote it, heal rebuilds pg2.
	[ "$(pg pg1 -tA -c 'SELECT pg_is_in_recovery()')" = f ] || pg pg1 -tA -c "SELECT pg_promote(true, 60)" >/dev/null
	pg_users
	if [ -f "$(pg_dir pg2)/data/PG_VERSION" ]; then pg_ctl_start pg2 || true; fi
	if ! pg_healthy; then log "postgresql: setting up streaming replication pg1:$PG1_PORT -> pg2:$PG2_PORT"; pg_heal; fi
}

print_env() {
	cat <<EOF
export DRWATCH_TESTDB_BASE='$BASE'
export DRWATCH_TEST_MYSQL_PRIMARY_DSN='$ADMIN_USER:$ADMIN_PASS@tcp(127.0.0.1:$MY1_PORT)/'
export DRWATCH_TEST_MYSQL_REPLICA_DSN='$ADMIN_USER:$ADMIN_PASS@tcp(127.0.0.1:$MY2_PORT)/'
export DRWATCH_TEST_MYSQL_REPL_USER='$REPL_USER'
export DRWATCH_TEST_MYSQL_REPL_PASSWORD='$REPL_PASS'
export DRWATCH_TEST_PGSQL_PRIMARY_DSN='postgres://$ADMIN_USER:$ADMIN_PASS@127.0.0.1:$PG1_PORT/postgres?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.crt'
export DRWATCH_TEST_PGSQL_STANDBY_DSN='postgres://$ADMIN_USER:$ADMIN_PASS@127.0.0.1:$PG2_PORT/postgres?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.crt'
export DRWATCH_TEST_PGSQL_REPL_USER='$REPL_USER'
export DRWATCH_TEST_PGSQL_REPL_PASSWORD='$REPL_PASS'
export DRWATCH_TEST_PGSQL_PRIMARY_DATADIR='$(pg_dir pg1)/data'
export DRWATCH_TEST_PGSQL_STANDBY_DATADIR='$(pg_dir pg2)/data'
export DRWATCH_TEST_PGSQL_BINDIR='$PGBIN'
export DRWATCH_TEST_TLS_CA='$TLS_DIR/ca.crt'
export DRWATCH_TESTDB_SCRIPT='$(cd "$(dirname "$0")" && pwd)/$(basename "$0")'
EOF
}

status_line() {
	local n=$1 up=down
	case $n in my*) my_alive "$n" && up=up ;; pg*) pg_alive "$n" && up=up ;; esac
	echo "$n $up"
}

cmd=${1:-}
case $cmd in
start)
	need_root; install_packages
	if [ -d "$BASE" ] && [ "$(cat "$BASE/layout" 2>/dev/null)" != "$LAYOUT" ]; then
		log "rebuilding $BASE (layout changed)"
		my_stop my2; my_stop my1; pg_stop pg2; pg_stop pg1; rm -rf "$BASE"
	fi
	mkdir -p "$BASE"; echo "$LAYOUT" >"$BASE/layout"; chmod 755 "$BASE"
	tls_make; mysql_up; pgsql_up; print_env ;;
stop)
	need_root; my_stop my2; my_stop my1; pg_stop pg2; pg_stop pg1 ;;
status)
	for n in my1 my2 pg1 pg2; do status_line "$n"; done
	my_healthy 2>/dev/null && echo "mysql replication healthy" || echo "mysql replication NOT healthy"
	pg_healthy 2>/dev/null && echo "pgsql replication healthy" || echo "pgsql replication NOT healthy" ;;
env) print_env ;;
reset)
	need_root; my_stop my2; my_stop my1; pg_stop pg2; pg_stop pg1
	rm -rf "$BASE"; "$0" start ;;
heal)
	need_root
	case ${2:-} in
	mysql) mysql_up; my_heal ;;
	pgsql) pgsql_up; pg_heal ;;
	*) die "heal needs mysql or pgsql" ;;
	esac ;;
start-one)
	need_root
	case ${2:-} in my1 | my2) my_start "$2" ;; pg1 | pg2) pg_ctl_start "$2" ;; *) die "start-one needs my1, my2, pg1 or pg2" ;; esac ;;
stop-one)
	need_root
	case ${2:-} in my1 | my2) my_stop "$2" ;; pg1 | pg2) pg_stop "$2" ;; *) die "stop-one needs my1, my2, pg1 or pg2" ;; esac ;;
*)
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2 ;;
esac
