#!/usr/bin/env bash
# Find PostgreSQL and Redis where the tests will look for them, start the local ones if
# they are installed but stopped, and say exactly what is missing otherwise.
#
# Where: the host and port of COMMENTGUARD_TEST_DATABASE_URL (default
# postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and COMMENTGUARD_TEST_REDIS_URL
# (default redis://127.0.0.1:6379/15). Only a service on this machine (127.0.0.1,
# localhost, ::1) is ever started. Exit status 0 when both answer, 1 otherwise.
set -euo pipefail

database_url=${COMMENTGUARD_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}
redis_url=${COMMENTGUARD_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
wait_seconds=20

# "scheme://user:pass@host:port/path" -> "host port" (port defaulting to $2).
host_port() {
    local rest=${1#*://}
    rest=${rest%%/*}
    rest=${rest##*@}
    local host=${rest%:*} port=${rest##*:}
    if [[ $host == "$rest" ]]; then port=$2; fi
    echo "${host:-127.0.0.1} $port"
}

listening() {
    # bash's /dev/tcp: a plain TCP connect, no client binary needed.
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_for() {
    local host=$1 port=$2
    for _ in $(seq $((wait_seconds * 5))); do
        if listening "$host" "$port"; then return 0; fi
        sleep 0.2
    done
    return 1
}

is_local() {
    [[ $1 == 127.0.0.1 || $1 == localhost || $1 == ::1 || $1 == "[::1]" ]]
}

start_postgres() {
    if ! command -v pg_ctlcluster >/dev/null || [[ ! -d /etc/postgresql ]]; then
        return 1
    fi
    local version started=1
    for version in $(ls /etc/postgresql); do
        echo "services: starting PostgreSQL $version (pg_ctlcluster $version main start)"
        if pg_ctlcluster --skip-systemctl-redirect "$version" main start; then started=0; fi
    done
    return $started
}

start_redis() {
    command -v redis-server >/dev/null || return 1
    echo "services: starting redis-server on port $1 (no persistence)"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$1" --save "" --appendonly no >/dev/null
}

missing=0

read -r pg_host pg_port < <(host_port "$database_url" 5432)
if listening "$pg_host" "$pg_port"; then
    echo "services: PostgreSQL answers on $pg_host:$pg_port"
elif is_local "$pg_host" && start_postgres && wait_for "$pg_host" "$pg_port"; then
    echo "services: PostgreSQL started on $pg_host:$pg_port"
else
    missing=1
    echo "services: PostgreSQL is not reachable on $pg_host:$pg_port." >&2
    if is_local "$pg_host"; then
        echo "  No local cluster answers there (pg_lsclusters shows the ports of those" \
            "installed). Install one (Debian/Ubuntu: apt-get install postgresql; the" \
            "tests connect as user 'postgres' with trust auth on 127.0.0.1) or point" \
            "COMMENTGUARD_TEST_DATABASE_URL at a server where the user may CREATE" \
            "DATABASE." >&2
    else
        echo "  Start it, or fix COMMENTGUARD_TEST_DATABASE_URL ($database_url)." >&2
    fi
fi

read -r redis_host redis_port < <(host_port "$redis_url" 6379)
if listening "$redis_host" "$redis_port"; then
    echo "services: Redis answers on $redis_host:$redis_port"
elif is_local "$redis_host" && start_redis "$redis_port" && wait_for "$redis_host" "$redis_port"; then
    echo "services: Redis started on $redis_host:$redis_port"
else
    missing=1
    echo "services: Redis is not reachable on $redis_host:$redis_port." >&2
    if is_local "$redis_host"; then
        echo "  No redis-server to start. Install it (Debian/Ubuntu: apt-get install" \
            "redis-server) or point COMMENTGUARD_TEST_REDIS_URL at a Redis." >&2
    else
        echo "  Start it, or fix COMMENTGUARD_TEST_REDIS_URL ($redis_url)." >&2
    fi
fi

exit $missing
