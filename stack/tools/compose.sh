#!/usr/bin/env bash
# Docker Compose (v2 CLI line, released as v5) for checking docker-compose.yml where no Docker is
# installed: built from its Go module with the local Go toolchain, through the Go module proxy only.
#
#   stack/tools/compose.sh install     build it once (idempotent), print the binary's path
#   stack/tools/compose.sh path        print the binary's path if installed, else exit 1
#   stack/tools/compose.sh ARGS...     install if needed, then run compose ARGS (e.g. `config --quiet`)
#
# The binary lands in .tools/bin/docker-compose (git-ignored by .tools/.gitignore) and is also kept in
# ${AQSTREAM_TOOLS_CACHE:-~/.cache/aqstream}, so a fresh clone on the same machine copies it instead of
# building (a cold build takes about 3.5 minutes on 2 cores; the copy, well under a second).
# It is a standalone binary; `stack/tools/compose.sh install --plugin` also links it as the docker CLI
# plugin (${DOCKER_CONFIG:-~/.docker}/cli-plugins/docker-compose), so `docker compose` works too.
#
# Needs Go >= 1.26.8 (the go directive of compose v5.6.0's go.mod). Compose's go.mod has `exclude`
# directives, which `go install module@version` refuses, so the module is downloaded with
# `go mod download` and built as the main module from a copy of its source.
set -euo pipefail

COMPOSE_MODULE=github.com/docker/compose/v5
COMPOSE_VERSION=${AQSTREAM_COMPOSE_VERSION:-v5.6.0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS_DIR=$ROOT/.tools
BIN=$TOOLS_DIR/bin/docker-compose
STAMP=$TOOLS_DIR/bin/docker-compose.version
CACHE_DIR=${AQSTREAM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aqstream}
CACHED=$CACHE_DIR/docker-compose-$COMPOSE_VERSION

log() { echo "compose.sh: $*" >&2; }

installed() { [[ -x $BIN && -f $STAMP && $(cat "$STAMP") == "$COMPOSE_VERSION" ]]; }

find_go() {
    if command -v go > /dev/null 2>&1; then
        command -v go
    elif [[ -x /usr/local/go/bin/go ]]; then
        echo /usr/local/go/bin/go
    else
        log "no Go toolchain: install Go >= 1.26.8 (https://go.dev/doc/install), or set AQSTREAM_COMPOSE_VERSION to a compose release your Go can build"
        return 1
    fi
}

build() (
    # a subshell: its EXIT trap removes the scratch folder however the build ends
    go=$(find_go)
    log "building docker compose $COMPOSE_VERSION from the Go module $COMPOSE_MODULE ($("$go" version))"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # from an empty folder (no go.mod around); GOTOOLCHAIN=local: a Go older than the module needs
    # fails with its own message instead of fetching another toolchain
    src_dir=$(cd "$work" && GOTOOLCHAIN=local "$go" mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -n $src_dir && -d $src_dir ]] || { log "go mod download gave no source folder"; return 1; }
    mkdir -p "$work/src" "$(dirname "$CACHED")"
    cp -R "$src_dir/." "$work/src/"
    chmod -R u+w "$work/src"
    (
        cd "$work/src"
        GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" "$go" build -trimpath \
            -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" \
            -o "$CACHED.tmp" ./cmd
    )
    mv "$CACHED.tmp" "$CACHED"
)

install() {
    if installed; then
        echo "$BIN"
        return 0
    fi
    local started=$SECONDS
    if [[ ! -x $CACHED ]]; then
        build
    else
        log "using the cached build $CACHED"
    fi
    mkdir -p "$TOOLS_DIR/bin"
    [[ -f $TOOLS_DIR/.gitignore ]] || printf '# built tools (stack/tools/*.sh), never committed\n*\n' > "$TOOLS_DIR/.gitignore"
    cp "$CACHED" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
    echo "$COMPOSE_VERSION" > "$STAMP"
    "$BIN" version >&2
    log "installed $BIN in $((SECONDS - started)) s"
    echo "$BIN"
}

link_plugin() {
    local plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
    mkdir -p "$plugins"
    ln -sf "$BIN" "$plugins/docker-compose"
    log "linked $plugins/docker-compose -> $BIN (docker compose version: $(docker compose version 2>/dev/null || echo 'no docker CLI'))"
}

case "${1:-install}" in
    install)
        install
        if [[ ${2:-} == --plugin ]]; then link_plugin; fi
        ;;
    path)
        installed && echo "$BIN"
        ;;
    *)
        install > /dev/null
        cd "$ROOT"
        exec "$BIN" "$@"
        ;;
esac
