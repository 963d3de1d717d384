#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432), Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672) are up;
# start them if not.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 50); do port_open "$1" && return 0; sleep 0.2; done
  return 1
}

if ! port_open 5432; then
  echo "PostgreSQL is down; starting it"
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  wait_port 5432 || { echo "error: PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }
fi

if ! port_open 6379; then
  echo "Redis is down; starting it"
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  wait_port 6379 || { echo "error: Redis is not reachable on 127.0.0.1:6379"; exit 1; }
fi
if ! port_open 5672; then
  echo "RabbitMQ is down; starting it"
  if command -v rabbitmq-server >/dev/null; then
    (rabbitmq-server -detached || service rabbitmq-server start) >/dev/null 2>&1 || true
  fi
  for _ in $(seq 1 100); do port_open 5672 && break; sleep 0.3; done
  port_open 5672 || { echo "error: RabbitMQ is not reachable on 127.0.0.1:5672"; exit 1; }
fi
echo "services: PostgreSQL 127.0.0.1:5432, Redis 127.0.0.1:6379 and RabbitMQ 127.0.0.1:5672 are up"
