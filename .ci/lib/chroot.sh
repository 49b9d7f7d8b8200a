# shellcheck shell=bash
# Shared by .ci/provision-redis8.sh and .ci/rebuild-debian-dwarf.sh (sourced, not run):
# mounts, the guarded removal of chroots, running a command in a chroot, build-ids.
# The caller defines log and die.

# Mount points at or below $1 in this mount namespace, deepest first.
mounts_below() {
    local dir="$1"
    awk -v d="$dir" '{
        p = $5; gsub(/\\040/, " ", p)
        if (p == d || index(p, d "/") == 1) print length(p) "\t" p
    }' /proc/self/mountinfo | sort -rn | cut -f2-
}

# The guard: `rm -rf` of a chroot that still has the host's /tmp (or /dev, /proc) mounted
# inside would delete the host's files. Unmount everything below $1 first, and refuse to
# remove anything while a mount is left, or anything outside $2.
safe_remove() {
    local dir="$1" root="$2" m
    [ -e "$dir" ] || [ -L "$dir" ] || return 0
    dir="$(cd "$dir" && pwd -P)"
    case "$dir" in
        "$root"/*) ;;
        *) die "safe_remove: refusing to remove $dir (not under $root)" ;;
    esac
    while read -r m; do
        [ -n "$m" ] || continue
        log "  unmounting $m"
        umount -R "$m" 2>/dev/null || umount -l "$m" || true
    done < <(mounts_below "$dir")
    if [ -n "$(mounts_below "$dir")" ]; then
        die "safe_remove: mounts remain below $dir; not removing it:
$(mounts_below "$dir")"
    fi
    rm -rf --one-file-system -- "$dir"
}

# Run a command inside chroot $1 with proc and /dev mounted, in a private mount namespace
# (the mounts disappear when the command ends; the host never sees them).
in_chroot() {
    local croot="$1"
    shift
    # shellcheck disable=SC2016 # the inner script expands its own positional parameters
    unshare --mount --propagation private -- /bin/sh -c '
        set -e
        r="$1"; shift
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
            DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"
    ' in-chroot "$croot" "$@"
}

# GNU build-id of $1 (awk reads to the end: an early exit could SIGPIPE readelf and, with
# pipefail, fail).
build_id() {
    readelf -n "$1" 2>/dev/null | awk '/Build ID:/ && !id { id = $3 } END { print id }'
}
