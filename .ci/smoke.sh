#!/usr/bin/env bash
# The README's run command, as a new user types it, in a smoke form that CI can judge:
#   1. the run command from README.md's "The two commands" runs in a terminal (tmux) until
#      ControlCenter shows every service of configs/services.toml healthy, then `q`;
#   2. `mdw status --json` must show every service running and healthy;
#   3. every line of README.md's "A short tour" runs (those that follow or open a UI for a
#      few seconds), ending with `mdw down`;
#   4. the "Scripts and CI can run this sequence" line from README.md runs as written
#      (it ends with `mdw down`), and afterwards no Russell and no service is left.
# The commands are read from README.md, so a README whose commands break turns CI red.
#
# The default line-up uses fixed ports (9100, 8080, 9200, ...). When run as root, the smoke
# runs in network, PID and mount namespaces of its own: the ports are private, and when the
# script ends the kernel ends every process it started, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source .ci/lib.sh
LIMIT="${SMOKE_LIMIT_SECONDS:-1200}"

if [[ "${1:-}" != "--inside" ]]; then
    for tool in tmux ip unshare jq; do
        if ! command -v "$tool" >/dev/null; then
            apt-get update -qq && apt-get install -y -qq tmux iproute2 util-linux jq >/dev/null
            break
        fi
    done
    if [[ $(id -u) == 0 ]] && unshare --net --pid --fork --mount-proc true 2>/dev/null; then
        SMOKE_PRIVATE=1 exec unshare --net --pid --fork --mount-proc "$0" --inside
    fi
    echo "smoke: not root or no namespaces: running on the host's ports" >&2
    exec "$0" --inside
fi

# Inside our namespaces (or on the host): loopback up when the namespace is new.
ip link set lo up 2>/dev/null || true

# The commands, from the README itself.
RUN_CMD=$(doc_cmd README.md "Run (")
SEQUENCE=$(doc_cmd README.md "Scripts and CI can run this sequence")
TOUR=$(doc_block README.md "## A short tour")
need_cmd RUN_CMD SEQUENCE TOUR
echo "smoke: run command from README: $RUN_CMD"
echo "smoke: sequence from README:    $SEQUENCE"

MDW="$ROOT/target/release/mdw"
SOCK="mdw-smoke-$$"
STATE="$ROOT/configs/.russell"
rm -rf "$STATE"

screen() { tmux -L "$SOCK" capture-pane -p -t smoke -S -60 2>/dev/null || true; }
cleanup() {
    local rc=$?
    if [[ $rc != 0 ]]; then
        echo "---- smoke failed (exit $rc); last screen:"
        screen
        [[ -f "$STATE/russell.log" ]] && { echo "---- russell.log (tail)"; tail -n 40 "$STATE/russell.log"; }
    fi
    # Stop what is left (by Russell's own PID file; the PID namespace ends the rest).
    if [[ -x "$MDW" ]]; then timeout 60 "$MDW" down >/dev/null 2>&1 || true; fi
    tmux -L "$SOCK" kill-server 2>/dev/null || true
    exit $rc
}
trap cleanup EXIT

# 1. The run command in a 120x40 terminal, until ControlCenter shows everything healthy.
tmux -L "$SOCK" new-session -d -s smoke -x 120 -y 40 "cd '$ROOT' && $RUN_CMD; echo \"smoke-exit-\$?\"; sleep 600"
deadline=$((SECONDS + LIMIT))
while :; do
    shown=$(screen)
    if [[ $shown =~ Services:\ ([0-9]+)/([0-9]+)\ running.*Healthy:\ ([0-9]+)/([0-9]+) ]] \
        && [[ ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" && ${BASH_REMATCH[3]} == "${BASH_REMATCH[2]}" \
            && ${BASH_REMATCH[4]} == "${BASH_REMATCH[2]}" && ${BASH_REMATCH[2]} != 0 ]]; then
        echo "smoke: ControlCenter shows ${BASH_REMATCH[2]}/${BASH_REMATCH[2]} services running and healthy"
        break
    fi
    if [[ $shown == *smoke-exit-* ]]; then
        echo "smoke: the run command ended before ControlCenter showed every service healthy"
        exit 1
    fi
    if (( SECONDS > deadline )); then
        echo "smoke: ControlCenter did not show every service healthy within ${LIMIT}s"
        exit 1
    fi
    sleep 1
done
screen | sed -n '1,30p'
tmux -L "$SOCK" send-keys -t smoke q
sleep 1

# 2. Status from the CLI: every service running and healthy.
status=$("$MDW" status --json)
bad=$(jq -r '[.services[] | select(.state != "running" or (.healthy | not)) | "\(.short_name) (\(.state))"] | join(", ")' <<<"$status")
total=$(jq '.services | length' <<<"$status")
if [[ -n "$bad" || "$total" == 0 ]]; then
    echo "smoke: mdw status: not healthy: ${bad:-no services}"
    exit 1
fi
echo "smoke: mdw status: $total services running and healthy"

# 3. The tour, line by line. What follows forever (-f, events) or opens a UI runs for a few
#    seconds; a UI runs in a terminal and must show its header.
export PATH="$ROOT/target/release:$PATH"
while IFS= read -r line; do
    echo "smoke: tour: $line"
    case "$line" in
        *" cc"*)
            tmux -L "$SOCK" new-window -t smoke -n tour "cd '$ROOT' && $line; sleep 60"
            sleep 3
            tmux -L "$SOCK" capture-pane -p -t smoke:tour | grep -q "Control Center" \
                || { echo "smoke: '$line' shows no ControlCenter"; tmux -L "$SOCK" capture-pane -p -t smoke:tour; exit 1; }
            tmux -L "$SOCK" send-keys -t smoke:tour q ;;
        *" -f"* | *events*)
            rc=0; timeout 3 bash -c "$line" >/tmp/mdw-smoke-tour.log 2>&1 || rc=$?
            [[ $rc == 124 && ( $line == *events* || -s /tmp/mdw-smoke-tour.log ) ]] \
                || { echo "smoke: '$line' ended with $rc:"; cat /tmp/mdw-smoke-tour.log; exit 1; } ;;
        *)
            bash -c "$line" >/tmp/mdw-smoke-tour.log 2>&1 \
                || { echo "smoke: '$line' failed:"; cat /tmp/mdw-smoke-tour.log; exit 1; } ;;
    esac
done <<<"$TOUR"

# 4. The README's script sequence, as written (mdw on PATH), ending with `mdw down`.
timeout 300 bash -euo pipefail -c "$SEQUENCE" >/tmp/mdw-smoke-seq.log 2>&1 \
    || { echo "smoke: the README's sequence failed:"; cat /tmp/mdw-smoke-seq.log; exit 1; }
echo "smoke: README sequence passed ($(wc -l </tmp/mdw-smoke-seq.log) lines of output)"
if "$MDW" status >/dev/null 2>&1; then
    echo "smoke: Russell still answers after mdw down"
    exit 1
fi
# In our own PID namespace every process is ours: none may carry a service's marks now.
[[ "${SMOKE_PRIVATE:-}" == 1 ]] && left=$(grep -l "RUSSELL_STATE_DIR=" /proc/[0-9]*/environ 2>/dev/null | wc -l || true)
if [[ "${left:-0}" != 0 ]]; then
    echo "smoke: $left marked service processes are left after mdw down"
    exit 1
fi
echo "smoke: passed"
