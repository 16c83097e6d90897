#!/bin/bash
# Start sshd (the engines' tunnel endpoint) and the ipyparallel controller.
#
# Environment:
#   IPP_KEY | IPP_KEY_FILE        HMAC key signing every message (secret, required)
#   IPP_SSH_AUTHORIZED_KEYS       engine public keys allowed to tunnel, one per line
#                                 (required; or IPP_SSH_AUTHORIZED_KEYS_FILE)
#   IPP_SSH_HOST_KEY | IPP_SSH_HOST_KEY_FILE
#                                 sshd's private host key (secret, required): OpenSSH
#                                 PEM, or that PEM base64-encoded on one line (env
#                                 files cannot hold newlines); engines pin its public half
#   IPP_PUBLIC_HOST               name or IP engines use to reach this container
#                                 (default: this container's hostname)
#   IPP_SSH_PORT                  tunnel port (default 2222)
#   IPP_ENGINE_PORTS              loopback ports for engines (default 10101-10110)
#   IPP_CLIENT_PORTS              loopback ports for clients (default 10111-10130)
#   IPP_ACTIVITY_INTERVAL         seconds between task-activity lines on stdout, read by
#                                 the deployment janitor for idle_shutdown (default 30;
#                                 0 disables)
set -e
# shellcheck source=/dev/null
source /usr/local/lib/aci-research/log.sh
# shellcheck source=/dev/null
source /usr/local/lib/aci-research/secret.sh

security_dir="${IPYTHONDIR:-$HOME/.ipython}/profile_default/security"
sshd_dir="$HOME/.sshd"
ssh_port="${IPP_SSH_PORT:-2222}"
engine_ports="${IPP_ENGINE_PORTS:-10101-10110}"
client_ports="${IPP_CLIENT_PORTS:-10111-10130}"
public_host="${IPP_PUBLIC_HOST:-$(hostname)}"
user="$(id -un)"

key="$(read_secret IPP_KEY)"
[ -n "$key" ] || _log_fatal "no HMAC key: set IPP_KEY or IPP_KEY_FILE (a random secret shared with engines and clients)"
authorized_keys="$(read_secret IPP_SSH_AUTHORIZED_KEYS)"
[ -n "$authorized_keys" ] || _log_fatal "no engine keys: set IPP_SSH_AUTHORIZED_KEYS (or _FILE) to the engines' SSH public keys"
host_key="$(read_secret IPP_SSH_HOST_KEY)"
[ -n "$host_key" ] || _log_fatal "no SSH host key: set IPP_SSH_HOST_KEY (or _FILE) to an OpenSSH private key; engines pin its public half"

umask 077
mkdir -p "$sshd_dir" "$HOME/.ssh" "$security_dir"
case "$host_key" in
    *"-----BEGIN"*) printf '%s\n' "$host_key" > "$sshd_dir/ssh_host_key" ;;
    *) base64 -d <<< "$host_key" > "$sshd_dir/ssh_host_key" 2>/dev/null \
        || _log_fatal "IPP_SSH_HOST_KEY is neither an OpenSSH PEM key nor base64 of one" ;;
esac
ssh-keygen -y -f "$sshd_dir/ssh_host_key" > "$sshd_dir/ssh_host_key.pub" 2>/dev/null \
    || _log_fatal "IPP_SSH_HOST_KEY is not a valid unencrypted OpenSSH private key"
printf '%s\n' "$authorized_keys" > "$HOME/.ssh/authorized_keys"
printf '%s' "$key" > "$sshd_dir/hmac.key"

# sshd may forward only to the controller's engine ports, on loopback.
permit_open=""
IFS=- read -r first last <<< "$engine_ports"
for ((port = first; port <= ${last:-$first}; port++)); do
    permit_open+=" 127.0.0.1:$port"
done
# MaxStartups: every engine opens one tunnel per channel at once, so a container of 4
# engines (an MPI world) starts ~30 key exchanges together; sshd's default (10:30:100)
# would drop some, leaving an engine registered with a dead channel.
cat > "$sshd_dir/sshd_config" <<CFG
Port $ssh_port
HostKey $sshd_dir/ssh_host_key
PidFile $sshd_dir/sshd.pid
AuthorizedKeysFile $HOME/.ssh/authorized_keys
AllowUsers $user
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
AllowTcpForwarding local
PermitOpen$permit_open
AllowAgentForwarding no
AllowStreamLocalForwarding no
X11Forwarding no
PermitTTY no
PermitTunnel no
GatewayPorts no
PermitUserRC no
ForceCommand /usr/sbin/nologin
ClientAliveInterval 15
PerSourcePenalties no
MaxStartups 64:30:256
LogLevel VERBOSE
CFG
/usr/sbin/sshd -t -f "$sshd_dir/sshd_config" || _log_fatal "sshd rejected its configuration"
/usr/sbin/sshd -D -e -f "$sshd_dir/sshd_config" &
_log_info "sshd tunnel endpoint on port $ssh_port for $user (forwarding only to 127.0.0.1:$engine_ports)"

# Reused connection files keep ports and key across restarts, unless the key changed.
engine_json="$security_dir/ipcontroller-engine.json"
if [ -f "$engine_json" ] && ! python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["key"] != open(sys.argv[2]).read())' \
        "$engine_json" "$sshd_dir/hmac.key"; then
    _log_info "the HMAC key changed; discarding old connection files"
    rm -f "$security_dir"/ipcontroller-*.json
fi
umask 022
reuse=()
[ -f "$engine_json" ] && reuse=(--reuse)

# The activity reporter (ipp-activity) is restarted if it fails, and its failure
# never stops the controller: it only feeds idle_shutdown.
if [ "${IPP_ACTIVITY_INTERVAL:-30}" != 0 ]; then
    (
        set +e
        while true; do
            ipp-activity
            _log_warn "ipp-activity exited ($?); restarting it in 10 s"
            sleep 10
        done
    ) &
fi

_log_info "starting ipcontroller (engines via $user@$public_host:$ssh_port)"
# registration_timeout: an engine's first heartbeat comes through a tunnel it starts after the
# registration reply; when 4 engines of a container (an MPI world) start tunnels at once on
# shared vCPUs that takes over the default 30 s, and a purged registration leaves an engine
# that believes it is registered.
exec ipcontroller \
    --IPController.registration_timeout=90 \
    "${reuse[@]}" \
    --ip=127.0.0.1 \
    --location=127.0.0.1 \
    --enginessh="$user@$public_host:$ssh_port" \
    --IPController.engine_ports="$engine_ports" \
    --IPController.client_ports="$client_ports" \
    --Session.keyfile="$sshd_dir/hmac.key" \
    --IPController.db_class=DictDB \
    --log-level=INFO \
    "$@"
