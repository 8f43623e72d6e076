#!/usr/bin/env bash
# (Re)start the local services the tests use, and fail loudly if one cannot start. Run it after
# scripts/setup.sh --dev: the S3-compatible server (moto) runs from ./.venv.
set -uo pipefail
cd "$(dirname "$0")/.."

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure() {  # name port start-command...
  local name=$1 port=$2; shift 2
  if up "$port"; then echo "services: $name is up on :$port"; return 0; fi
  echo "services: $name is down on :$port, starting it"
  "$@" || true
  for _ in $(seq 1 60); do
    if up "$port"; then echo "services: $name started"; return 0; fi
    sleep 0.5
  done
  echo "services: FAILED to start $name on :$port" >&2
  return 1
}

# moto's S3-compatible server (in memory), for the object-storage artifact tests; port as in tests/conftest.py
MOTO_PORT=${LOOPLINE_MOTO_PORT:-5555}
start_moto() {
  if ! .venv/bin/python -c "import moto.server" 2>/dev/null; then
    echo "services: moto is not installed in ./.venv: run bash scripts/setup.sh --dev first" >&2
    return 1
  fi
  setsid nohup .venv/bin/python -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" \
    >"${TMPDIR:-/tmp}/loopline-moto.log" 2>&1 </dev/null &
}

status=0
ensure PostgreSQL 5432 pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql 2>/dev/null | head -1)" main start || status=1
ensure MariaDB 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || status=1
ensure Redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
  --dir /var/lib/redis --logfile /var/log/redis/ci.log || status=1
ensure RabbitMQ 5672 rabbitmq-server -detached || status=1
ensure Mosquitto 1883 mosquitto -d -c /etc/mosquitto/mosquitto.conf || status=1
ensure NATS 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
  -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || status=1
ensure "S3 (moto)" "$MOTO_PORT" start_moto || status=1
exit $status
