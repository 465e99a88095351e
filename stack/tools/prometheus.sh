#!/usr/bin/env bash
# Prometheus and promtool from Debian's `prometheus` package (2.42 in bookworm), without installing it
# system-wide: the .deb and the JavaScript packages its web UI links to are fetched with
# `apt-get download` (no dpkg database, no service, no user) and unpacked with `dpkg-deb -x` into
# the git-ignored .tools/prometheus; .tools/bin/prometheus and .tools/bin/promtool point into it.
#
#   stack/tools/prometheus.sh install     fetch and unpack once (idempotent), print promtool's path
#   stack/tools/prometheus.sh path        print promtool's path if installed, else exit 1
#   stack/tools/prometheus.sh assets      print the web UI's folder (for prometheus --web.local-assets)
#   stack/tools/prometheus.sh promtool ARGS...    install if needed, then run promtool ARGS
#   stack/tools/prometheus.sh prometheus ARGS...  install if needed, then run prometheus ARGS
#
# The .deb files are kept in ${AQSTREAM_TOOLS_CACHE:-~/.cache/aqstream}/prometheus-debs, so a fresh
# clone on the same machine unpacks them without fetching. Debian's prometheus reads its web UI from
# /usr/share/prometheus/web and links it to /usr/share/javascript/*: both are unpacked under
# .tools/prometheus, so start it with --web.local-assets="$(stack/tools/prometheus.sh assets)".
# Fetching, caching and unpacking the .debs is shared with stack/tools/chromium.sh: stack/tools/debs.sh.
set -euo pipefail

# the upstream release line the alert rules are written and tested for (Debian bookworm's)
PROMETHEUS_SERIES=${AQSTREAM_PROMETHEUS_SERIES:-2.42.}
# prometheus itself, then what its web UI links to (its Depends, less adduser and libc)
PACKAGES=(prometheus fonts-glyphicons-halflings libjs-bootstrap4 libjs-eonasdan-bootstrap-datetimepicker
    libjs-jquery libjs-jquery-hotkeys libjs-moment libjs-moment-timezone libjs-mustache libjs-popper.js
    libjs-rickshaw libjs-d3)

TOOL=prometheus
# shellcheck source=stack/tools/debs.sh
source "$(dirname "${BASH_SOURCE[0]}")/debs.sh"

installed() { [[ -x $BIN_DIR/promtool && -x $BIN_DIR/prometheus && -f $STAMP ]]; }

cached_debs() { compgen -G "$CACHE_DIR/prometheus_${PROMETHEUS_SERIES}*.deb" > /dev/null; }

wanted_debs() { printf '%s\n' "${PACKAGES[@]}"; }

check_debs() {
    compgen -G "$1/prometheus_${PROMETHEUS_SERIES}*.deb" > /dev/null || {
        log "Debian's prometheus is not ${PROMETHEUS_SERIES}x: $(ls "$1"/prometheus_*.deb)"
        log "(set AQSTREAM_PROMETHEUS_SERIES to accept it, and run 'make test-unit' for the rules)"
        return 1
    }
}

install() {
    if installed; then
        echo "$BIN_DIR/promtool"
        return 0
    fi
    local started=$SECONDS
    unpack_debs
    cached_version prometheus > "$STAMP"
    # relative links: .tools stays valid wherever the checkout (or a symlink to its .tools) lives
    ln -sfn ../prometheus/usr/bin/prometheus "$BIN_DIR/prometheus"
    ln -sfn ../prometheus/usr/bin/promtool "$BIN_DIR/promtool"
    "$BIN_DIR/promtool" --version 2>&1 | head -1 >&2
    log "installed $BIN_DIR/prometheus and $BIN_DIR/promtool in $((SECONDS - started)) s"
    echo "$BIN_DIR/promtool"
}

case "${1:-install}" in
    install)
        install
        ;;
    path)
        installed && echo "$BIN_DIR/promtool"
        ;;
    assets)
        installed && echo "$TREE/usr/share/prometheus/web/"
        ;;
    promtool | prometheus)
        tool=$1
        shift
        install > /dev/null
        exec "$BIN_DIR/$tool" "$@"
        ;;
    *)
        log "unknown command $1 (install, path, assets, promtool ARGS, prometheus ARGS)"
        exit 2
        ;;
esac
