#!/usr/bin/env bash
# Make sure a `debian:<suite>-slim` base image exists in the local Docker engine.
#
# Online users get the official image from `docker pull`. Where no registry is
# reachable (air-gapped labs, CI here) we build an equivalent image from
# Debian's mirror with debootstrap, slimmed the way the official slim images
# are (debuerreotype's slimify: no docs, man pages or locales), and tag it with
# the same name so every Dockerfile stays exactly what an online user builds.
#
# Environment:
#   BASE_IMAGE      image to provide (default debian:trixie-slim)
#   DEBIAN_MIRROR   mirror for debootstrap (default http://deb.debian.org/debian)
#   FORCE_OFFLINE=1 skip the pull attempt and always build from the mirror
set -euo pipefail

BASE_IMAGE="${BASE_IMAGE:-debian:trixie-slim}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite="${BASE_IMAGE#*:}"
suite="${suite%-slim}"

_log_info() { printf '[base] %s\n' "$*" >&2; }
_log_fatal() { printf '[base] ERROR: %s\n' "$*" >&2; exit 1; }

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    _log_info "$BASE_IMAGE is present; nothing to do"
    exit 0
fi

if [ "${FORCE_OFFLINE:-0}" != 1 ] && timeout 120 docker pull "$BASE_IMAGE" >/dev/null 2>&1; then
    _log_info "pulled $BASE_IMAGE"
    exit 0
fi

command -v debootstrap >/dev/null || _log_fatal "docker pull $BASE_IMAGE failed and debootstrap is not installed (apt-get install debootstrap)"
[ "$(id -u)" = 0 ] || _log_fatal "building $BASE_IMAGE from the mirror needs root (debootstrap); run: sudo make base"

_log_info "docker pull $BASE_IMAGE failed; building it from $DEBIAN_MIRROR with debootstrap"
rootfs="$(mktemp -d /var/tmp/debian-slim.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

debootstrap --variant=minbase "$suite" "$rootfs" "$DEBIAN_MIRROR" >/dev/null \
    || _log_fatal "debootstrap of $suite from $DEBIAN_MIRROR failed"

# The official images' apt and dpkg settings, so `apt-get install` in our
# Dockerfiles behaves the same on both bases.
cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
CFG
cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
echo 'Acquire::Languages "none";' > "$rootfs/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' > "$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"

# The same sources the official image ships (deb822 style).
rm -f "$rootfs/etc/apt/sources.list"
cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<CFG
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
CFG

# Slimify what debootstrap already unpacked before the excludes existed.
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$rootfs"/usr/share/{man,info,groff,linda,lintian}/* 2>/dev/null || true
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/*.log \
       "$rootfs"/var/log/apt/* "$rootfs"/tmp/* "$rootfs"/var/tmp/*
: > "$rootfs/etc/machine-id"
echo 'debian' > "$rootfs/etc/hostname"

tar --numeric-owner -C "$rootfs" -c . \
    | docker import \
        --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --message "debootstrap --variant=minbase $suite $DEBIAN_MIRROR (offline stand-in for $BASE_IMAGE)" \
        - "$BASE_IMAGE" >/dev/null
_log_info "built $BASE_IMAGE from the mirror ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | numfmt --to=iec))"
