#!/usr/bin/env bash
# Chromium and chromedriver from Debian's packages (bookworm's security line), without installing them
# system-wide: `chromium`, `chromium-common`, `chromium-driver` and whichever of their dependencies this
# machine lacks are fetched with `apt-get download` (no dpkg database, no root needed) and unpacked with
# `dpkg-deb -x` into the git-ignored .tools/chromium. .tools/bin/chromium and .tools/bin/chromedriver are
# small wrappers that put the unpacked libraries on LD_LIBRARY_PATH and exec the real binaries.
#
#   stack/tools/chromium.sh install              fetch and unpack once (idempotent), print chromium's path
#   stack/tools/chromium.sh path [chromedriver]  print chromium's (or chromedriver's) path if installed, else exit 1
#   stack/tools/chromium.sh chromium ARGS...     install if needed, then run chromium ARGS
#   stack/tools/chromium.sh chromedriver ARGS... install if needed, then run chromedriver ARGS
#
# Which dependencies are missing is apt's own answer: `apt-get -s install --no-install-recommends`
# resolves chromium's Depends recursively against what dpkg has installed and lists only what it would
# add. The .deb files are kept in ${AQSTREAM_TOOLS_CACHE:-~/.cache/aqstream}/chromium-debs, so a fresh
# clone on the same machine unpacks them without fetching.
#
# Debian's /usr/bin/chromium is a launcher script: it sources /etc/chromium.d (default flags, Debian's
# Google API keys) and execs /usr/lib/chromium/chromium. The wrapper here skips it and runs the binary
# directly: the callers (tests/support/browser.py) pass every flag they need themselves.
#
# Fetching, caching and unpacking the .debs is shared with stack/tools/prometheus.sh: stack/tools/debs.sh.
set -euo pipefail

PACKAGES=(chromium chromium-common chromium-driver)

TOOL=chromium
# shellcheck source=stack/tools/debs.sh
source "$(dirname "${BASH_SOURCE[0]}")/debs.sh"

installed() { [[ -x $BIN_DIR/chromium && -x $BIN_DIR/chromedriver && -f $STAMP ]]; }

cached_debs() {
    local package
    for package in "${PACKAGES[@]}"; do
        compgen -G "$CACHE_DIR/${package}_*.deb" > /dev/null || return 1
    done
}

# name=version of every package to fetch: the three above, plus the dependencies apt would install
wanted_debs() {
    local plan
    plan=$(apt-get -s -q install --no-install-recommends "${PACKAGES[@]}" 2>&1) || {
        log "apt cannot resolve ${PACKAGES[*]} on this machine:"
        echo "$plan" >&2
        return 1
    }
    # "Inst libfoo3 (1.2-1 Debian:12.12/stable [amd64])", or "Inst libfoo3 [1.1-1] (1.2-1 ...)" for an upgrade
    echo "$plan" | awk '/^Inst / { for (i = 3; i <= NF; i++) if ($i ~ /^\(/) { print $2 "=" substr($i, 2); break } }'
    # already installed system-wide: apt plans nothing for it, but the tree gets its own copy anyway
    local package
    for package in "${PACKAGES[@]}"; do
        grep -q "^Inst $package " <<< "$plan" || echo "$package"
    done
}

# the folders of the unpacked tree holding shared libraries, relative to it; not chromium's own folder
# (the binary finds its libraries there by itself), nor GTK's plugin folders (loaded by path, not by name)
library_dirs() {
    (cd "$1" && find . -name '*.so*' \( -type f -o -type l \) -not -path './usr/lib/chromium/*' \
        -not -path '*/gtk-3.0/*' -printf '%h\n' | sed 's|^\./||' | sort -u)
}

# a launcher in .tools/bin that finds the tree next to itself, so a moved or re-linked checkout still works
write_wrapper() {
    local name=$1 binary=$2 dirs=$3 path=
    local dir
    for dir in $dirs; do path="$path\$tree/$dir:"; done
    path=${path%:} # an empty entry in LD_LIBRARY_PATH would mean the current folder
    cat > "$BIN_DIR/$name.tmp" <<EOF
#!/bin/sh
# written by stack/tools/chromium.sh: Debian's $name unpacked in .tools/chromium, run with the libraries
# unpacked beside it (the ones this machine lacks)
tree=\$(cd "\$(dirname "\$0")/../chromium" && pwd)
export LD_LIBRARY_PATH="$path\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "\$tree/$binary" "\$@"
EOF
    chmod 755 "$BIN_DIR/$name.tmp"
    mv "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
}

# every shared library both binaries need resolves (from the system or the tree), and both start
verify() {
    local binary missing
    for binary in usr/lib/chromium/chromium usr/bin/chromedriver; do
        missing=$(LD_LIBRARY_PATH=$(library_dirs "$TREE" | sed "s|^|$TREE/|" | paste -sd:) ldd "$TREE/$binary" \
            | grep 'not found' || true)
        if [[ -n $missing ]]; then
            log "$binary still lacks libraries after unpacking:"
            echo "$missing" >&2
            log "remove $CACHE_DIR to fetch again, or install Debian's chromium system-wide (apt-get install chromium chromium-driver)"
            return 1
        fi
    done
    "$BIN_DIR/chromium" --version >&2
    "$BIN_DIR/chromedriver" --version >&2
}

install() {
    if installed; then
        echo "$BIN_DIR/chromium"
        return 0
    fi
    local started=$SECONDS
    unpack_debs
    local dirs
    dirs=$(library_dirs "$TREE")
    write_wrapper chromium usr/lib/chromium/chromium "$dirs"
    write_wrapper chromedriver usr/bin/chromedriver "$dirs"
    verify
    # written last: a failed check leaves the tool uninstalled, and the next install unpacks again
    cached_version chromium > "$STAMP"
    log "installed $BIN_DIR/chromium and $BIN_DIR/chromedriver ($(du -sh "$TREE" | cut -f1)) in $((SECONDS - started)) s"
    echo "$BIN_DIR/chromium"
}

case "${1:-install}" in
    install)
        install
        ;;
    path)
        tool=${2:-chromium}
        [[ $tool == chromium || $tool == chromedriver ]] || { log "path of chromium or chromedriver, not $tool"; exit 2; }
        installed && echo "$BIN_DIR/$tool"
        ;;
    chromium | chromedriver)
        tool=$1
        shift
        install > /dev/null
        exec "$BIN_DIR/$tool" "$@"
        ;;
    *)
        log "unknown command $1 (install, path [chromedriver], chromium ARGS, chromedriver ARGS)"
        exit 2
        ;;
esac
