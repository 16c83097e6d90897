#!/usr/bin/env bash
# Build one image of this repo with the local Docker engine's (legacy) builder.
#
# Usage: images/build.sh NAME     (NAME: base-builder, base or a folder in images/)
# Environment:
#   IMAGE_PREFIX     repository prefix (default aci-research)
#   TAG              tag (default latest)
#   DEBIAN_IMAGE     the root base image (default debian:trixie-slim)
#   EXTRA_CA_CERTS   PEM bundle that apt, pip and npm trust inside builder
#                    stages only (a TLS-intercepting proxy); default none
#   DOCKER_BUILD_ARGS  extra arguments for `docker build` (e.g. --no-cache)
set -euo pipefail

name=${1:?usage: images/build.sh NAME}
prefix=${IMAGE_PREFIX:-aci-research}
tag=${TAG:-latest}
here=$(cd "$(dirname "$0")" && pwd)

context=$here/$name
target=()
base_image=$prefix/base:$tag
case $name in
    base-builder) context=$here/base; target=(--target builder); base_image=${DEBIAN_IMAGE:-debian:trixie-slim} ;;
    base) base_image=${DEBIAN_IMAGE:-debian:trixie-slim} ;;
esac
[ -f "$context/Dockerfile" ] || { echo "images/build.sh: no image named '$name' (no $context/Dockerfile)" >&2; exit 2; }

# Revision of the image's own folder, so a commit elsewhere keeps the cache warm.
revision=$(git -C "$context" log -1 --format=%h -- . 2>/dev/null || true)
[ -n "$revision" ] || revision=unknown
if [ -n "$(git -C "$context" status --porcelain -- . 2>/dev/null)" ]; then revision=$revision-dirty; fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../pyproject.toml" | head -n1)

ca_copy=""
staged=""
cleanup() { [ -z "$ca_copy" ] || rm -f "$ca_copy"; [ -z "$staged" ] || rm -rf "$staged"; }
trap cleanup EXIT
if [ "$name" = deployer ]; then
    # The deployer image holds the repo's own package and blast-client: stage their
    # tracked sources into the context (git-ignored, removed after the build).
    staged=$context/src
    rm -rf "$staged" && mkdir -p "$staged/deployer" "$staged/blast-client"
    (cd "$here/.." && git ls-files -z -- pyproject.toml README.md deployer | xargs -0 cp --parents -t "$staged/deployer")
    (cd "$here/blast-client" && git ls-files -z -- . | xargs -0 cp --parents -t "$staged/blast-client")
fi
if [ -n "${EXTRA_CA_CERTS:-}" ] && [ -d "$context/build-ca" ]; then
    [ -r "$EXTRA_CA_CERTS" ] || { echo "EXTRA_CA_CERTS=$EXTRA_CA_CERTS is not a readable file" >&2; exit 2; }
    grep -q 'BEGIN CERTIFICATE' "$EXTRA_CA_CERTS" \
        || { echo "EXTRA_CA_CERTS=$EXTRA_CA_CERTS holds no PEM certificate" >&2; exit 2; }
    ca_copy=$context/build-ca/extra.crt
    cp "$EXTRA_CA_CERTS" "$ca_copy"
fi

echo "==> building $prefix/$name:$tag (revision $revision)" >&2
# shellcheck disable=SC2086  # DOCKER_BUILD_ARGS is a list of words on purpose
docker build "${target[@]}" \
    --tag "$prefix/$name:$tag" \
    --build-arg BASE_IMAGE="$base_image" \
    --build-arg BUILDER_IMAGE="$prefix/base-builder:$tag" \
    --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" \
    ${DOCKER_BUILD_ARGS:-} \
    "$context"
