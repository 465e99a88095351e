# shellcheck shell=bash
# What stack/tools/chromium.sh and stack/tools/prometheus.sh share: a tool taken from Debian's packages
# without installing them system-wide. The .deb files are fetched with `apt-get download` (no dpkg
# database, no service, no root needed) into ${AQSTREAM_TOOLS_CACHE:-~/.cache/aqstream}/$TOOL-debs, so a
# fresh clone on the same machine unpacks them without fetching, and unpacked with `dpkg-deb -x` into the
# git-ignored .tools/$TOOL. Sourced by those scripts, never run; they keep `set -euo pipefail`.
#
# The sourcing script sets TOOL (the tool's name: chromium, prometheus) before sourcing, and defines
#   cached_debs      succeeds when $CACHE_DIR holds what the tool needs (else fetch_debs runs)
#   wanted_debs      prints the packages to fetch, a `name` or `name=version` a line; asked again after an
#                    `apt-get update`, since the versions a stale package list names may be gone
#   check_debs DIR   (optional) succeeds when the download in DIR fits, else says why and fails: a misfit
#                    download does not replace the cache
# This file sets ROOT (the checkout), TOOLS_DIR (.tools), TREE (.tools/$TOOL), STAMP ($TREE/.version, the
# script writes it once its checks pass), BIN_DIR (.tools/bin) and CACHE_DIR, and provides
#   log MESSAGE...         MESSAGE on stderr, after the running script's name
#   fetch_debs             wanted_debs' packages into a fresh $CACHE_DIR, with packages.txt listing them
#   unpack_debs            every .deb in $CACHE_DIR (fetched first unless cached_debs) into a fresh $TREE
#   cached_version PACKAGE the Version of PACKAGE's .deb in $CACHE_DIR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS_DIR=$ROOT/.tools
TREE=$TOOLS_DIR/$TOOL
# shellcheck disable=SC2034 # read by the sourcing scripts
STAMP=$TREE/.version
BIN_DIR=$TOOLS_DIR/bin
CACHE_DIR=${AQSTREAM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aqstream}/$TOOL-debs

log() { echo "${0##*/}: $*" >&2; }

apt_download() {
    # apt warns that it downloads as root rather than as _apt into a folder of ours: true, and harmless
    apt-get download -q "$@" > /dev/null 2> >(grep -v 'Download is performed unsandboxed' >&2)
}

fetch_debs() (
    # a subshell: its EXIT trap removes the scratch folder however the download ends
    command -v apt-get > /dev/null || { log "no apt-get: fetch Debian's $TOOL packages another way"; return 1; }
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    chmod 755 "$work" # apt's _apt user writes the download there
    local wanted
    wanted=$(wanted_debs)
    log "fetching $(echo "$wanted" | wc -l) packages with apt-get download: $(echo "$wanted" | sed 's/=.*//' | tr '\n' ' ')"
    # shellcheck disable=SC2086 # one package or package=version per word
    if ! (cd "$work" && apt_download $wanted); then
        if [[ $(id -u) == 0 ]]; then
            log "apt-get download failed: refreshing the package lists (apt-get update) and trying again"
            apt-get update -q > /dev/null
            wanted=$(wanted_debs)
            # shellcheck disable=SC2086
            (cd "$work" && apt_download $wanted)
        else
            log "apt-get download failed: run 'sudo apt-get update' and try again"
            return 1
        fi
    fi
    if declare -F check_debs > /dev/null; then
        check_debs "$work"
    fi
    echo "$wanted" > "$work/packages.txt"
    mkdir -p "$CACHE_DIR.tmp"
    mv "$work"/*.deb "$work/packages.txt" "$CACHE_DIR.tmp/"
    rm -rf "$CACHE_DIR"
    mv "$CACHE_DIR.tmp" "$CACHE_DIR"
)

unpack_debs() {
    if cached_debs; then
        log "using the cached packages in $CACHE_DIR"
    else
        fetch_debs
    fi
    mkdir -p "$TOOLS_DIR" "$BIN_DIR"
    [[ -f $TOOLS_DIR/.gitignore ]] || printf '# built tools (stack/tools/*.sh), never committed\n*\n' > "$TOOLS_DIR/.gitignore"
    # unpacked beside the tree, then swapped in: an unpack that fails halfway never leaves a half tree at $TREE
    rm -rf "$TREE.tmp"
    mkdir -p "$TREE.tmp"
    local deb
    for deb in "$CACHE_DIR"/*.deb; do
        dpkg-deb -x "$deb" "$TREE.tmp"
    done
    rm -rf "$TREE"
    mv "$TREE.tmp" "$TREE"
}

cached_version() { dpkg-deb -f "$(compgen -G "$CACHE_DIR/${1}_*.deb" | head -1)" Version; }
