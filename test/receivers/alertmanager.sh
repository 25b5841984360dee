#!/usr/bin/env bash
# Throwaway Prometheus Alertmanager (Debian's prometheus-alertmanager) for tests.
#
#   alertmanager.sh start <dir> <port> [webhook-url]   start, wait for /api/v2/status, print "ready"
#   alertmanager.sh stop <dir>                         stop the instance started in <dir>
#   alertmanager.sh alerts <port> [filter]             print GET /api/v2/alerts (JSON);
#                                                      filter e.g. 'alertname="PipelineFailed"'
#   alertmanager.sh install                            apt-get install it if missing
#
# <dir> gets alertmanager.yml, data/, alertmanager.log and alertmanager.pid.
# The config has one "null" receiver (group_wait 1s); with [webhook-url] the
# receiver instead forwards notifications there (e.g. to http_sink.py).
# Clustering is off (--cluster.listen-address=), only 127.0.0.1 is listened on,
# and the Debian service (systemd unit / init script) is never started.
set -euo pipefail

BIN=/usr/bin/prometheus-alertmanager

die() { echo "alertmanager.sh: $*" >&2; exit 1; }

install_am() {
    [ -x "$BIN" ] && return 0
    [ "$(id -u)" = 0 ] || die "$BIN missing and not root: apt-get install prometheus-alertmanager"
    # Keep the package's postinst from starting the Debian service: invoke-rc.d
    # honours policy-rc.d (exit 101 = "action forbidden").
    local guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        guard=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus-alertmanager >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus-alertmanager >&2; } \
        || rc=$?
    [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || die "apt-get install prometheus-alertmanager failed"
    [ -x "$BIN" ] || die "$BIN still missing after install"
}

# true if $1 is a live alertmanager process (guards against pid reuse)
is_am_pid() {
    [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -q prometheus-alertmanager
}

cmd_start() {
    local dir=${1:?usage: alertmanager.sh start <dir> <port> [webhook-url]}
    local port=${2:?usage: alertmanager.sh start <dir> <port> [webhook-url]}
    local hook=${3:-}
    install_am
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/alertmanager.pid" ] && is_am_pid "$(cat "$dir/alertmanager.pid")"; then
        die "already running in $dir (pid $(cat "$dir/alertmanager.pid"))"
    fi
    if [ -n "$hook" ]; then
        cat > "$dir/alertmanager.yml" <<EOF
route:
  receiver: sink
  group_by: ['alertname', 'pipeline']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: '$hook'
        send_resolved: true
EOF
    else
        cat > "$dir/alertmanager.yml" <<EOF
route:
  receiver: 'null'
  group_by: ['alertname', 'pipeline']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: 'null'
EOF
    fi
    # Runs as whoever calls it (root is fine: the binary needs no particular user;
    # the Debian unit's User=prometheus only matters for /var/lib/prometheus,
    # which is not used here).  </dev/null + own log so callers' pipes don't hang.
    "$BIN" \
        --config.file="$dir/alertmanager.yml" \
        --storage.path="$dir/data" \
        --web.listen-address="127.0.0.1:$port" \
        --cluster.listen-address= \
        --log.level=warn \
        </dev/null >"$dir/alertmanager.log" 2>&1 &
    local pid=$!
    echo "$pid" > "$dir/alertmanager.pid"
    for _ in $(seq 1 150); do            # up to 30 s
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$dir/alertmanager.log" >&2
            rm -f "$dir/alertmanager.pid"
            die "exited during start-up (log above)"
        fi
        if curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/api/v2/status"; then
            echo ready
            return 0
        fi
        sleep 0.2
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$dir/alertmanager.pid"
    cat "$dir/alertmanager.log" >&2
    die "no answer on 127.0.0.1:$port/api/v2/status after 30 s"
}

cmd_stop() {
    local dir=${1:?usage: alertmanager.sh stop <dir>}
    local pf="$dir/alertmanager.pid" pid
    [ -f "$pf" ] || return 0
    pid=$(cat "$pf")
    if is_am_pid "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do         # up to 10 s
            is_am_pid "$pid" || break
            sleep 0.2
        done
        if is_am_pid "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pf"
}

cmd_alerts() {
    local port=${1:?usage: alertmanager.sh alerts <port> [filter]}
    if [ -n "${2:-}" ]; then
        curl -sfS -G --max-time 10 "http://127.0.0.1:$port/api/v2/alerts" --data-urlencode "filter=$2"
    else
        curl -sfS --max-time 10 "http://127.0.0.1:$port/api/v2/alerts"
    fi
    echo
}

case "${1:-}" in
    start)   shift; cmd_start "$@" ;;
    stop)    shift; cmd_stop "$@" ;;
    alerts)  shift; cmd_alerts "$@" ;;
    install) install_am ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
