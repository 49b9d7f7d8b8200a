#!/usr/bin/env bash
# Makes podman start containers on a machine without CAP_SYS_RESOURCE (CI's, and this
# project's development machines): containers get rlimits no higher than the machine's own
# (raising them fails with "setrlimit RLIMIT_NOFILE: Operation not permitted"), and runc as
# the OCI runtime. Leaves an existing /etc/containers/containers.conf alone when it already
# says both.
set -euo pipefail
conf=/etc/containers/containers.conf
if [ -f "$conf" ] && grep -q default_ulimits "$conf" && grep -q 'runtime *= *"runc"' "$conf"; then
    exit 0
fi
if [ -f "$conf" ]; then
    cp "$conf" "$conf.before-redis-rescue"
    echo "podman-config: $conf saved as $conf.before-redis-rescue"
fi
mkdir -p /etc/containers
cat >"$conf" <<'CONF'
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
echo "podman-config: wrote $conf"
