#!/bin/bash
# MariaDB for the example sites. On the first start (empty datadir) it
# initialises the server as DB_ROLE:
#   primary  creates the accounts and the "app" database (replicated)
#   replica  creates the accounts and replicates from DB_PRIMARY_HOST with
#            GTID (MASTER_USE_GTID=slave_pos), read-only
# Later starts only start the server: which side is primary is then
# drwatch's business (dbmonitor promotes and re-points replication).
# Environment: DB_ROLE, DB_SERVER_ID (1), DB_PRIMARY_HOST, DB_PRIMARY_PORT
# (3306), DB_ADMIN_USER/DB_ADMIN_PASSWORD (drwatch/drwatch),
# DB_REPL_USER/DB_REPL_PASSWORD (repl/repl), DB_APP_USER/DB_APP_PASSWORD
# (app/app). Example credentials: change them for anything real.
set -euo pipefail
role=${DB_ROLE:-primary}
sid=${DB_SERVER_ID:-1}
admin=${DB_ADMIN_USER:-drwatch} adminpw=${DB_ADMIN_PASSWORD:-drwatch}
repl=${DB_REPL_USER:-repl} replpw=${DB_REPL_PASSWORD:-repl}
app=${DB_APP_USER:-app} apppw=${DB_APP_PASSWORD:-app}
data=/var/lib/mysql
conf=/etc/mysql/mariadb.conf.d/99-drwatch.cnf

cat >"$conf" <<CONF
[mariadbd]
bind-address=0.0.0.0
port=3306
server_id=$sid
log_bin=binlog
log_slave_updates=ON
binlog_format=ROW
gtid_strict_mode=ON
gtid_domain_id=0
slave_net_timeout=4
skip-name-resolve
innodb_buffer_pool_size=64M
innodb_log_file_size=32M
performance_schema=OFF
max_connections=300
!include $data/drwatch-role.cnf
CONF

mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld "$data"
if [ ! -d "$data/mysql" ]; then
	echo "drwatch-mariadb: initialising $data as $role (server_id $sid)"
	# A replica starts read-only; drwatch lifts it when it promotes.
	if [ "$role" = replica ]; then echo -e "[mariadbd]\nread_only=ON" >"$data/drwatch-role.cnf"; else echo "[mariadbd]" >"$data/drwatch-role.cnf"; fi
	chown mysql:mysql "$data/drwatch-role.cnf"
	mariadb-install-db --user=mysql --datadir="$data" --auth-root-authentication-method=socket --skip-test-db >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }
	mariadbd --user=mysql --skip-networking --skip-slave-start &
	pid=$!
	for _ in $(seq 1 100); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.2; done
	# Accounts are made on each server on its own (sql_log_bin=0), so they
	# never become GTIDs the other side lacks.
	mariadb <<SQL
SET SESSION sql_log_bin=0;
CREATE USER '$admin'@'%' IDENTIFIED BY '$adminpw';
GRANT ALL PRIVILEGES ON *.* TO '$admin'@'%' WITH GRANT OPTION;
CREATE USER '$repl'@'%' IDENTIFIED BY '$replpw';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '$repl'@'%';
CREATE USER '$app'@'%' IDENTIFIED BY '$apppw';
GRANT ALL PRIVILEGES ON app.* TO '$app'@'%';
SQL
	if [ "$role" = primary ]; then
		mariadb -e "CREATE DATABASE app; CREATE TABLE app.writes (seq BIGINT PRIMARY KEY, writer VARCHAR(64) NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB;"
	else
		mariadb -e "CHANGE MASTER TO MASTER_HOST='${DB_PRIMARY_HOST:?DB_PRIMARY_HOST is required for a replica}', MASTER_PORT=${DB_PRIMARY_PORT:-3306},
MASTER_USER='$repl', MASTER_PASSWORD='$replpw', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos;"
	fi
	mariadb-admin shutdown
	wait "$pid" || true
fi
exec mariadbd --user=mysql
