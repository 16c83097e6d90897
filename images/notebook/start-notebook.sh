#!/bin/bash
# Start JupyterLab; authentication is always on.
#
# Environment (each secret X may instead come from the file named by X_FILE, e.g. a
# compose secret or an ACI secret volume at /run/secrets/<name>):
#   NOTEBOOK_TOKEN          access token (secret)
#   NOTEBOOK_PASSWORD_HASH  argon2 password hash from jupyter_server.auth.passwd (secret);
#                           with neither set, a random token is generated and logged once
#   NOTEBOOK_TLS            off (default) | self-signed | provided
#   NOTEBOOK_TLS_CERT, NOTEBOOK_TLS_KEY
#                           PEM certificate and key (secret) when NOTEBOOK_TLS=provided
#   AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_KEY with AZURE_STORAGE_ENDPOINTS
#                           storage for the BLAST notebooks (secret): the kernels get
#                           AZURE_STORAGE_CONNECTION_STRING, assembled here from the files
#   NOTEBOOK_PORT           listening port (default 8888)
#   NOTEBOOK_CONTROLLER_WATCHDOG
#                           seconds the controller may stay unreachable on loopback before
#                           the server exits to be restarted (default 30; 0: never)
set -e
# shellcheck source=/dev/null
source /usr/local/lib/aci-research/log.sh
# shellcheck source=/dev/null
source /usr/local/lib/aci-research/secret.sh

for name in NOTEBOOK_TOKEN NOTEBOOK_PASSWORD_HASH NOTEBOOK_TLS_CERT NOTEBOOK_TLS_KEY; do
    value="$(read_secret "$name")"
    # Trailing newlines of a secret file are not part of the value.
    if [ -n "$value" ]; then export "$name=$value"; fi
    unset "${name}_FILE"
done
if [ -z "${AZURE_STORAGE_CONNECTION_STRING:-}" ]; then
    storage="$(read_secret AZURE_STORAGE_CONNECTION_STRING)"
    key="$(read_secret AZURE_STORAGE_KEY)"
    if [ -z "$storage" ] && [ -n "$key" ] && [ -n "${AZURE_STORAGE_ENDPOINTS:-}" ]; then
        storage="${AZURE_STORAGE_ENDPOINTS%;};AccountKey=$key"
    fi
    if [ -n "$storage" ]; then export AZURE_STORAGE_CONNECTION_STRING="$storage"; fi
    unset storage key
fi

port="${NOTEBOOK_PORT:-8888}"
conf_dir="$HOME/.jupyter"
umask 077
mkdir -p "$conf_dir"
# The ipp.Cluster() guard (see ipcluster_config.py): the IPython profile is a tmpfs on a
# read-only root, so the image's copy is put in place at every start.
profile_dir="$HOME/.ipython/profile_default"
mkdir -p "$profile_dir"
cp /opt/aci-research/ipcluster_config.py "$profile_dir/ipcluster_config.py"
config="$conf_dir/jupyter_server_config.py"
: > "$config"

if [ -n "${NOTEBOOK_PASSWORD_HASH:-}" ]; then
    case "$NOTEBOOK_PASSWORD_HASH" in
        argon2:*) ;;
        *) _log_fatal "NOTEBOOK_PASSWORD_HASH must be an argon2 hash (python -c 'from jupyter_server.auth import passwd; print(passwd())')" ;;
    esac
    python3 -c 'import os; print("c.PasswordIdentityProvider.hashed_password = %r" % os.environ["NOTEBOOK_PASSWORD_HASH"])' >> "$config"
    # A password replaces the token; an empty token must then be explicit.
    export JUPYTER_TOKEN="${NOTEBOOK_TOKEN:-}"
elif [ -n "${NOTEBOOK_TOKEN:-}" ]; then
    export JUPYTER_TOKEN="$NOTEBOOK_TOKEN"
else
    JUPYTER_TOKEN="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
    export JUPYTER_TOKEN
    _log_info "no NOTEBOOK_TOKEN or NOTEBOOK_PASSWORD_HASH given; generated token: $JUPYTER_TOKEN"
fi
unset NOTEBOOK_TOKEN NOTEBOOK_PASSWORD_HASH

scheme=http
case "${NOTEBOOK_TLS:-off}" in
    off) ;;
    self-signed)
        openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=$(hostname)" \
            -keyout "$conf_dir/tls.key" -out "$conf_dir/tls.crt" 2>/dev/null
        scheme=https ;;
    provided)
        if [ -z "${NOTEBOOK_TLS_CERT:-}" ] || [ -z "${NOTEBOOK_TLS_KEY:-}" ]; then
            _log_fatal "NOTEBOOK_TLS=provided needs NOTEBOOK_TLS_CERT and NOTEBOOK_TLS_KEY (PEM)"
        fi
        printf '%s\n' "$NOTEBOOK_TLS_CERT" > "$conf_dir/tls.crt"
        printf '%s\n' "$NOTEBOOK_TLS_KEY" > "$conf_dir/tls.key"
        scheme=https ;;
    *) _log_fatal "NOTEBOOK_TLS must be off, self-signed or provided (got '$NOTEBOOK_TLS')" ;;
esac
unset NOTEBOOK_TLS_CERT NOTEBOOK_TLS_KEY
tls_args=()
if [ "$scheme" = https ]; then
    tls_args=(--ServerApp.certfile="$conf_dir/tls.crt" --ServerApp.keyfile="$conf_dir/tls.key")
fi
umask 022

# The shipped notebooks, copied once so the user's edits survive restarts.
for nb in /opt/aci-research/notebooks/*.ipynb; do
    [ -e "$nb" ] || continue
    [ -e "$HOME/work/${nb##*/}" ] || cp "$nb" "$HOME/work/"
done

# In compose this container joins the controller's network namespace, and a restarted
# controller gets a new one: this server would then be unreachable and its clients cut off.
# Exit instead, so the restart policy starts it again in the controller's current namespace.
# (An ACI container group keeps one namespace, and the controller is back within seconds.)
watch_controller() {
    local limit=$1 server=$2 down=0 port
    local client_json="$HOME/.ipython/profile_default/security/ipcontroller-client.json"
    while sleep 5; do
        port=$(grep -o '"registration": *[0-9]*' "$client_json" 2>/dev/null | grep -o '[0-9]*$') \
            || continue  # no controller beside us (yet)
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            down=0
            continue
        fi
        down=$((down + 5))
        if [ "$down" -ge "$limit" ]; then
            _log_warn "the controller has not answered on 127.0.0.1:$port for ${down}s; stopping so the notebook restarts beside it"
            kill -TERM "$server"
            return
        fi
    done
}
watchdog="${NOTEBOOK_CONTROLLER_WATCHDOG:-30}"
[[ "$watchdog" =~ ^[0-9]+$ ]] || _log_fatal "NOTEBOOK_CONTROLLER_WATCHDOG must be a number of seconds (0 turns it off)"
if [ "$watchdog" -gt 0 ]; then
    # $$ is this shell, which exec turns into the server.
    watch_controller "$watchdog" $$ &
fi

_log_info "starting JupyterLab on $scheme://0.0.0.0:$port"
exec jupyter lab \
    --ServerApp.ip=0.0.0.0 \
    --ServerApp.port="$port" \
    --ServerApp.open_browser=False \
    --ServerApp.root_dir="$HOME/work" \
    --ServerApp.allow_remote_access=True \
    "${tls_args[@]}" \
    "$@"
