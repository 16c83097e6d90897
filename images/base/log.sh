# shellcheck shell=bash
# Logging helpers for the images' start scripts (sourced, not executed).
# Lines go to stderr with a level, so `docker logs` and ACI logs show them and
# the image tests can assert that no WARNING or ERROR line appears.
_log() {
    local level=$1
    shift
    printf '%s [%s] %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${0##*/}" "$level" "$*" >&2
}
_log_info() { _log INFO "$@"; }
_log_warn() { _log WARNING "$@"; }
_log_fatal() {
    _log ERROR "$@"
    exit 2
}
