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
set -euo pipefail

# the upstream release line the alert rules are written and tested for (Debian bookworm's)
PROMETHEUS_SERIES=${AQSTREAM_PROMETHEUS_SERIES:-2.42.}
# prometheus itself, then what its web UI links to (its Depends, less adduser and libc)
PACKAGES=(prometheus fonts-glyphicons-halflings libjs-bootstrap4 libjs-eonasdan-bootstrap-datetimepicker
    libjs-jquery libjs-jquery-hotkeys libjs-moment libjs-moment-timezone libjs-mustache libjs-popper.js
    libjs-rickshaw libjs-d3)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS_DIR=$ROOT/.tools
TREE=$TOOLS_DIR/prometheus
STAMP=$TREE/.version
BIN_DIR=$TOOLS_DIR/bin
CACHE_DIR=${AQSTREAM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aqstream}/prometheus-debs

log() { echo "prometheus.sh: $*" >&2; }

installed() { [[ -x $BIN_DIR/promtool && -x $BIN_DIR/prometheus && -f $STAMP ]]; }

cached_debs() { compgen -G "$CACHE_DIR/prometheus_${PROMETHEUS_SERIES}*.deb" > /dev/null; }

fetch() (
    # a subshell: its EXIT trap removes the scratch folder however the download ends
    command -v apt-get > /dev/null || { log "no apt-get: fetch Debian's prometheus package another way"; return 1; }
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    chmod 755 "$work" # apt's _apt user writes the download there
    log "fetching ${PACKAGES[*]} with apt-get download"
    if ! (cd "$work" && apt-get download -q "${PACKAGES[@]}" > /dev/null); then
        if [[ $(id -u) == 0 ]]; then
            log "apt-get download failed: refreshing the package lists (apt-get update) and trying again"
            apt-get update -q > /dev/null
            (cd "$work" && apt-get download -q "${PACKAGES[@]}" > /dev/null)
        else
            log "apt-get download failed: run 'sudo apt-get update' and try again"
            return 1
        fi
    fi
    compgen -G "$work/prometheus_${PROMETHEUS_SERIES}*.deb" > /dev/null || {
        log "Debian's prometheus is not ${PROMETHEUS_SERIES}x: $(ls "$work"/prometheus_*.deb)"
        log "(set AQSTREAM_PROMETHEUS_SERIES to accept it, and run 'make test-unit' for the rules)"
        return 1
    }
    mkdir -p "$CACHE_DIR.tmp"
    mv "$work"/*.deb "$CACHE_DIR.tmp/"
    rm -rf "$CACHE_DIR"
    mv "$CACHE_DIR.tmp" "$CACHE_DIR"
)

install() {
    if installed; then
        echo "$BIN_DIR/promtool"
        return 0
    fi
    local started=$SECONDS
    if cached_debs; then
        log "using the cached packages in $CACHE_DIR"
    else
        fetch
    fi
    mkdir -p "$TOOLS_DIR" "$BIN_DIR"
    [[ -f $TOOLS_DIR/.gitignore ]] || printf '# built tools (stack/tools/*.sh), never committed\n*\n' > "$TOOLS_DIR/.gitignore"
    rm -rf "$TREE.tmp"
    mkdir -p "$TREE.tmp"
    local deb
    for deb in "$CACHE_DIR"/*.deb; do
        dpkg-deb -x "$deb" "$TREE.tmp"
    done
    dpkg-deb -f "$(compgen -G "$CACHE_DIR/prometheus_*.deb" | head -1)" Version > "$TREE.tmp/.version"
    rm -rf "$TREE"
    mv "$TREE.tmp" "$TREE"
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
