#!/usr/bin/env bash
# Build one image of this repo with the local Docker engine (legacy builder).
#
# Usage: images/build.sh NAME     (NAME: an image of images/images.toml)
# The catalogue (images/images.toml) says where the image's context is, its target
# and its build arguments; deployer/imagebuild/catalogue.py reads it and packs the
# context (honouring .dockerignore, with EXTRA_CA_CERTS added), for `deployer build` too.
# Environment:
#   IMAGE_PREFIX     repository prefix (default aci-research)
#   TAG              tag (default latest)
#   DEBIAN_IMAGE     the root base image (default debian:trixie-slim)
#   EXTRA_CA_CERTS   PEM bundle that apt, pip and npm trust inside builder
#                    stages only (a TLS-intercepting proxy); default none
#   DOCKER_BUILD_ARGS  extra arguments for `docker build` (e.g. --no-cache)
#   VENV             the virtualenv with the deployer (default: the repo's .venv)
set -euo pipefail

name=${1:?usage: images/build.sh NAME}
prefix=${IMAGE_PREFIX:-aci-research}
tag=${TAG:-latest}
here=$(cd "$(dirname "$0")" && pwd)
python=${VENV:-$here/../.venv}/bin/python
[ -x "$python" ] || { echo "images/build.sh: no $python: run \`make venv\` first (or set VENV)" >&2; exit 2; }
catalogue=("$python" -m deployer.imagebuild --images-dir "$here")

# The folder of the image, for its revision (a commit elsewhere keeps the cache warm).
folder=$("${catalogue[@]}" folder "$name")
revision=$(git -C "$here/$folder" log -1 --format=%h -- . 2>/dev/null || true)
[ -n "$revision" ] || revision=unknown
if [ -n "$(git -C "$here/$folder" status --porcelain -- . 2>/dev/null)" ]; then revision=$revision-dirty; fi

mapfile -t args < <("${catalogue[@]}" docker-args "$name" --prefix "$prefix" --tag "$tag" \
    --revision "$revision" --debian "${DEBIAN_IMAGE:-debian:trixie-slim}")
[ "${#args[@]}" -gt 0 ] || exit 2

echo "==> building $prefix/$name:$tag (revision $revision)" >&2
# The log is kept to tell a missing proxy CA apart from other failures.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# shellcheck disable=SC2086  # DOCKER_BUILD_ARGS is a list of words on purpose
if ! "${catalogue[@]}" context "$name" | docker build "${args[@]}" ${DOCKER_BUILD_ARGS:-} - 2>&1 | tee "$log"; then
    if hint=$("${catalogue[@]}" tls-hint "$log"); then
        echo "images/build.sh: building $name failed: $hint" >&2
    else
        echo "images/build.sh: building $name failed (see above)" >&2
    fi
    exit 1
fi
# A second tag, the build hash `deployer build` tags this context with: the emulator's fake
# ACR pushes the local image so tagged for a run of the same context (emulator/README.md).
hash_tag=$("${catalogue[@]}" hash-tag "$name")
docker tag "$prefix/$name:$tag" "$prefix/$name:$hash_tag"
echo "==> tagged $prefix/$name:$hash_tag" >&2
