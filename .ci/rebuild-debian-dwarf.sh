#!/usr/bin/env bash
# Rebuild Debian's own redis source packages WITH DWARF, for the Redis 8 Debian builds that
# .ci/provision-redis8.sh installs stripped (8.0.2 from trixie-security, 8.6.3 from
# experimental). NOT part of CI: run it by hand when a layout must be derived or checked.
#
# For each build, a copy of its provisioned chroot (target/redis-builds/<name>/root) gets
# deb-src lines for the same suites, then, inside it (in a private mount namespace, so no
# mount outlives a command): `apt-get source redis=VERSION`, `apt-get build-dep` of that
# source tree, and
#   DEB_BUILD_OPTIONS="nostrip nocheck noautodbgsym parallel=N" dpkg-buildpackage -b -uc -us
# i.e. Debian's own debian/rules, patches and dpkg-buildflags (USE_SYSTEM_JEMALLOC=yes
# USE_JEMALLOC=yes USE_SYSTEMD=yes BUILD_TLS=yes, -O2, hardening=+all), only not stripped.
# The result, src/redis-server of the built tree:
#   target/redis-builds/dwarf/8.0.2-debian/redis-server
#   target/redis-builds/dwarf/8.6.3-debian/redis-server
#
# 8.6.3 (5:8.6.3-1, experimental) is the exact Debian source. 8.0.2 is a RECONSTRUCTION:
# the archive index lists 5:8.0.2-3+deb13u3's source but its .dsc and .debian.tar.xz are
# gone (404 on /debian and /debian-security; the orig tarball is still there). The script
# then takes the orig tarball, the debian/ directory of sid's 5:8.0.6-3 (same debian/rules),
# the installed package's changelog, the donor's Debian patches and those of its CVE patches
# that +deb13u3's changelog names, plus layout fixups for what +deb13u1 added and the donor
# does not carry (see layout_fixups). That the layouts equal the shipped binary's is checked,
# not assumed (below).
#
# Neither is the shipped binary: the build-id differs (it hashes the debug sections too) and
# here no symbol address matched (different patches for 8.0.2; for 8.6.3 sid's gcc today is
# not the one Debian's build used). Take symbols from the shipped binary's .dynsym (or a
# profile recorded for its build-id); take only types/layouts from these.
#
# The checks at the end, against the shipped stripped binary: `ptype/o struct redisDb` must
# be 80 bytes for 8.0.2 and 96 for 8.6.3; sizeof(struct redisServer) must equal the size of
# `server` in the shipped .dynsym; every exported data object must have the same size; and
# for every static_configs entry, the offsets in `server` of the fields it points to (read
# from the shipped PIE's relocations) must be equal: that checks every config-backed field
# of struct redisServer, and is how the missing +deb13u1 field was found.
#
# Each build takes 2 to 6 minutes on 2 cores plus the build-deps; they run one after the
# other, compiling under `nice -n 19`. A finished build (its stamp matches the pin) is only
# checked again. The build chroots stay in target/redis-builds/dwarf/.work/<name>/ (about
# 1.1 GB each) for quick re-runs; remove them with --clean (which unmounts first).
#
# Usage: .ci/rebuild-debian-dwarf.sh [--clean] [NAME…]   (default: both)
# Env:   REDIS_BUILDS_DIR (default <repo>/target/redis-builds), JOBS (default nproc)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${REDIS_BUILDS_DIR:-$root/target/redis-builds}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
clean=0

# name | source version | expected sizeof(struct redisDb) | donor of debian/ (suite:version)
# The donor is used only when the pinned version's Debian packaging (.dsc, .debian.tar.xz)
# is gone from the archive while its orig tarball is still there (seen for +deb13u3 on
# both deb.debian.org/debian and /debian-security: 404): see reconstruct().
builds=(
    "8.0.2-debian|5:8.0.2-3+deb13u3|80|sid:5:8.0.6-3"
    "8.6.3-debian|5:8.6.3-1|96|"
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

# The Debian packaging of $2 is gone, its orig tarball is not: rebuild the source tree
# from the orig tarball and the debian/ directory of the donor $3 (suite:version, the same
# Debian packaging of a nearby upstream release: its debian/rules, hence its flags, build
# options and USE_SYSTEM_JEMALLOC choice, are the same). debian/changelog becomes the
# changelog the installed package ships (so the version is exactly $2); of the donor's
# patches, all Debian ones are applied, and its CVE patches only when the installed
# package's changelog names that CVE; a patch that does not apply is skipped and logged.
# The tree is then built as source format 1.0 (its patches already applied).
reconstruct() { # $1 chroot, $2 version, $3 donor, $4 tree, $5 log
    local croot="$1" version="$2" donor="$3" tree="$4" blog="$5" dsuite dversion upstream mirror p cve
    dsuite="${donor%%:*}"
    dversion="${donor#*:}"
    upstream="${version#*:}"
    upstream="${upstream%-*}"
    log "  the Debian packaging of redis $version is gone from the archive: reconstructing"
    log "  it from redis_$upstream.orig.tar.gz and debian/ of redis $dversion ($dsuite)"
    in_chroot "$croot" sh -c "cd /build && apt-get source -qq --tar-only redis=$version" >>"$blog" 2>&1 || true
    [ -f "$croot/build/redis_$upstream.orig.tar.gz" ] ||
        die "redis $version: neither its Debian packaging nor its orig tarball is in the archive any more"
    mirror="$(awk '$1 == "deb" { print $2; exit }' "$croot/etc/apt/sources.list")"
    printf 'deb-src %s %s main\n' "$mirror" "$dsuite" >"$croot/etc/apt/sources.list.d/donor.list"
    in_chroot "$croot" apt-get update -qq >>"$blog" 2>&1 || die "apt-get update with the donor $dsuite failed"
    mkdir -p "$croot/donor"
    in_chroot "$croot" sh -c "cd /donor && apt-get source -qq --download-only redis=$dversion" >>"$blog" 2>&1 ||
        die "the donor source redis=$dversion ($dsuite) is not in the archive either: pick another donor"
    rm -rf "${croot:?}$tree.tmp"
    mkdir -p "$croot$tree.tmp"
    tar -xzf "$croot/build/redis_$upstream.orig.tar.gz" -C "$croot$tree.tmp" --strip-components=1
    tar -xJf "$croot/donor/redis_${dversion#*:}.debian.tar.xz" -C "$croot$tree.tmp"
    zcat "$croot/usr/share/doc/redis-server/changelog.Debian.gz" >"$croot$tree.tmp/debian/changelog"
    head -n 1 "$croot$tree.tmp/debian/changelog" | grep -qF "($version)" ||
        die "the installed redis-server's changelog does not start with $version"
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
    layout_fixups "$croot$tree.tmp" "$croot$tree.tmp/debian/changelog"
    echo "1.0" >"$croot$tree.tmp/debian/source/format"
    mv "$croot$tree.tmp" "$croot$tree"
}

# Layout changes the lost packaging had and the donor's patches lack (the donor's upstream
# release already contains them): found by comparing the shipped binary's static_configs
# (see config_map) with a first reconstruction.
# - CVE-2025-46818 (+deb13u1, upstream 8.0.4): the hidden config lua-enable-deprecated-api,
#   an int in struct redisServer right after script_disable_deny_script (it moves the
#   lazyfree_* fields by 4 bytes) and one more static_configs entry. Only the field and the
#   config entry are added here (as upstream 8.0.4 has them); the Lua code using them is not.
layout_fixups() { # $1 source tree, $2 the target version's debian/changelog
    local t="$1" changelog="$2"
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
# `server` of the fields the entry points to (from the R_X86_64_RELATIVE relocations of
# the PIE). This reads the shipped, stripped binary too: it checks the offsets of every
# config-backed field of struct redisServer without DWARF. $2 = sizeof(standardConfig).
config_map() {
    python3 - "$1" "$2" <<'PYEOF'
import subprocess, sys
path, esz = sys.argv[1], int(sys.argv[2])
def readelf(*a):
    return subprocess.run(["readelf", "-W", *a, path], capture_output=True, text=True, check=True).stdout.splitlines()
syms = {}
for l in readelf("--dyn-syms"):
    p = l.split()
    if len(p) >= 8 and p[3] == "OBJECT" and p[6] != "UND":
        syms[p[7]] = (int(p[1], 16), int(p[2]))
rel = {}
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
def cstr(addr):
    for off, va, fsz in loads:
        if va <= addr < va + fsz:
            o = off + addr - va
            return data[o:data.index(b"\0", o)].decode(errors="replace")
    return "?"
sa, ssz = syms["server"]
ca, csz = syms["static_configs"]
for e in range(ca, ca + csz, esz):
    name, offs = None, []
    for k in range(0, esz, 8):
        t = rel.get(e + k)
        if t is None:
            continue
        if sa <= t < sa + ssz:
            offs.append(str(t - sa))
        elif name is None:
            name = cstr(t)
    print(name, *offs)
PYEOF
}

rebuild() { # $1 name, $2 version, $3 expected sizeof(redisDb), $4 donor
    local name="$1" version="$2" want_db="$3" donor="$4" src="$out/$1/root" bdir="$work/$1" croot dest upstream tree
    croot="$bdir/root"
    dest="$out/dwarf/$name"
    [ -x "$src/usr/bin/redis-check-rdb" ] || die "$name: $src is not provisioned: run .ci/provision-redis8.sh $name"
    if [ ! -f "$croot/.redis-rescue-chroot" ]; then
        log "  copying the $name chroot to $croot"
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
    tree="/build/redis-$upstream"
    log "  apt-get update, apt-get source redis=$version"
    in_chroot "$croot" apt-get update -qq >"$bdir/build.log" 2>&1 ||
        { tail -n 20 "$bdir/build.log" >&2; die "$name: apt-get update failed"; }
    in_chroot "$croot" apt-get install -y -qq --no-install-recommends dpkg-dev build-essential >>"$bdir/build.log" 2>&1 ||
        { tail -n 20 "$bdir/build.log" >&2; die "$name: installing dpkg-dev failed"; }
    if [ ! -d "$croot$tree/debian" ]; then
        mkdir -p "$croot/build"
        if ! in_chroot "$croot" sh -c "cd /build && apt-get source -qq redis=$version" >>"$bdir/build.log" 2>&1; then
            if [ -z "$donor" ]; then
                tail -n 20 "$bdir/build.log" >&2
                die "$name: apt-get source redis=$version failed (is the version gone from the archive?)"
            fi
            reconstruct "$croot" "$version" "$donor" "$tree" "$bdir/build.log"
        fi
    fi
    [ -d "$croot$tree/debian" ] || die "$name: no $tree/debian after apt-get source"
    log "  apt-get build-dep $tree"
    in_chroot "$croot" apt-get build-dep -y -q --no-install-recommends "$tree" >>"$bdir/build.log" 2>&1 ||
        { tail -n 20 "$bdir/build.log" >&2; die "$name: apt-get build-dep failed"; }
    log "  dpkg-buildpackage -b -uc -us (nostrip nocheck noautodbgsym parallel=$jobs, nice 19; log $bdir/build.log)"
    local t0=$SECONDS
    in_chroot "$croot" sh -c "cd $tree && DEB_BUILD_OPTIONS='nostrip nocheck noautodbgsym parallel=$jobs' \
        nice -n 19 dpkg-buildpackage -b -uc -us" >>"$bdir/build.log" 2>&1 ||
        { tail -n 30 "$bdir/build.log" >&2; die "$name: dpkg-buildpackage failed"; }
    log "  built in $((SECONDS - t0))s"
    [ -f "$croot$tree/src/redis-server" ] || die "$name: no src/redis-server after the build"
    mkdir -p "$dest"
    install -m 0755 "$croot$tree/src/redis-server" "$dest/redis-server.tmp"
    mv "$dest/redis-server.tmp" "$dest/redis-server"
    printf '%s\n' "$version" >"$dest/.provisioned"
    check "$name" "$want_db"
}

check() { # $1 name, $2 expected sizeof(redisDb)
    local name="$1" want_db="$2" bin="$out/dwarf/$1/redis-server" shipped="$out/$1/root/usr/bin/redis-check-rdb"
    local db srv want_srv
    db="$(struct_size "$bin" redisDb)"
    srv="$(struct_size "$bin" redisServer)"
    want_srv="$(readelf -W --dyn-syms "$shipped" | awk '$8 == "server" && !n { n = $3 } END { print n }')"
    printf '%s %s build-id=%s (shipped %s) sizeof(redisDb)=%s sizeof(redisServer)=%s (shipped .dynsym server: %s)\n' \
        "$name" "$bin" "$(build_id "$bin")" "$(build_id "$shipped")" "${db:-none}" "${srv:-none}" "${want_srv:-?}"
    [ "$db" = "$want_db" ] || die "$name: sizeof(struct redisDb) is ${db:-unknown (no DWARF?)}, expected $want_db"
    [ "$srv" = "$want_srv" ] || die "$name: sizeof(struct redisServer) $srv differs from the shipped server's $want_srv"
    # Every data object the shipped binary exports must have the same size in the rebuild
    # (a cheap whole-binary check of the layouts); addresses are only reported.
    local objs mism same_addr
    objs="$(join -j1 \
        <(readelf -W --dyn-syms "$shipped" | awk '$4 == "OBJECT" && $7 != "UND" { print $8, $3, $2 }' | sort -u) \
        <(readelf -W --dyn-syms "$bin" | awk '$4 == "OBJECT" && $7 != "UND" { print $8, $3, $2 }' | sort -u))"
    mism="$(awk '$2 != $4' <<<"$objs")"
    same_addr="$(awk '$3 == $5' <<<"$objs" | wc -l)"
    log "  $name: $(wc -l <<<"$objs") exported data objects compared, $same_addr at the same address as in the shipped binary"
    [ -z "$mism" ] || die "$name: exported objects whose size differs (name, shipped size/addr, rebuilt size/addr):
$mism"
    # The offset in struct redisServer of every config-backed field, shipped vs rebuilt.
    local esz cdiff
    esz="$(struct_size "$bin" standardConfig)"
    cdiff="$(diff <(config_map "$shipped" "$esz" | sort) <(config_map "$bin" "$esz" | sort) || true)"
    log "  $name: $(config_map "$shipped" "$esz" | wc -l) static_configs entries compared (config name -> field offsets in server)"
    [ -z "$cdiff" ] || die "$name: config-backed fields of struct redisServer differ (< shipped, > rebuilt):
$cdiff"
}

for entry in "${builds[@]}"; do
    IFS='|' read -r name version want_db donor <<<"$entry"
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
    if [ -x "$out/dwarf/$name/redis-server" ] && [ "$(cat "$out/dwarf/$name/.provisioned" 2>/dev/null)" = "$version" ]; then
        check "$name" "$want_db"
        continue
    fi
    log "$name: rebuilding Debian's redis $version with DWARF"
    rebuild "$name" "$version" "$want_db" "$donor"
done
