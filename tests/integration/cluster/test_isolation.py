"""Engines reach the controller only through the SSH tunnel: its ZMQ ports listen on loopback,
an engine container cannot open them directly, yet it registers through port 2222."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from docker.models.containers import Container

from testbed.cluster import ENGINE_REPLICAS, python_in, registered_engines
from testbed.engine import exec_text

ENGINE_PORTS = range(10101, 10111)
CLIENT_PORTS = range(10111, 10131)
TUNNEL_PORT = 2222
NOTEBOOK_PORT = 8888

# Lists (address, port) of the listening TCP sockets and (remote address, remote port) of the
# established ones, from /proc (the images have no ss or netstat).
SOCKETS = r"""
import json, socket
listening, established = [], []
for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
    for line in open(table).read().splitlines()[1:]:
        fields = line.split()
        def addr(text):
            host, port = text.split(":")
            raw = bytes.fromhex(host)
            # /proc prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            return socket.inet_ntop(family, raw), int(port, 16)
        if fields[3] == "0A":
            listening.append(addr(fields[1]))
        elif fields[3] == "01":
            established.append(addr(fields[2]))
print(json.dumps({"listening": listening, "established": established}))
"""

CONNECT = r"""
import json, socket
result = {}
for port in %s:
    try:
        socket.create_connection(("ipcontroller", port), timeout=5).close()
        result[port] = "open"
    except OSError as exc:
        result[port] = type(exc).__name__
print(json.dumps(result))
"""


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and their IPv4-mapped forms.

    Args:
        address (str): An IP address.
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def test_controller_zmq_ports_listen_on_loopback_only(controller: Container) -> None:
    sockets = python_in(controller, SOCKETS, timeout=30)
    listening = [(a, p) for a, p in sockets["listening"]]
    zmq = [(a, p) for a, p in listening if p in ENGINE_PORTS or p in CLIENT_PORTS]
    assert len(zmq) >= 10, f"the controller's ZMQ ports are not listening: {listening}"
    assert all(is_loopback(a) for a, _ in zmq), zmq
    # The namespace is shared with the notebook: only sshd and the notebook face the network.
    exposed = {p for a, p in listening if not is_loopback(a)}
    assert exposed == {TUNNEL_PORT, NOTEBOOK_PORT}, listening


def test_engine_cannot_open_the_zmq_ports_directly(engines: list[Container]) -> None:
    ports = [*ENGINE_PORTS, *CLIENT_PORTS]
    result = python_in(engines[0], CONNECT % json.dumps(ports), timeout=120)
    assert result == {str(p): "ConnectionRefusedError" for p in ports}
    # The tunnel port itself answers, so the refusal is not a network outage.
    assert python_in(engines[0], CONNECT % f"[{TUNNEL_PORT}]", timeout=30) == {
        str(TUNNEL_PORT): "open"
    }


def test_engines_register_through_the_tunnel(
    engines: list[Container], controller: Container, notebook: Container
) -> None:
    controller.reload()
    controller_ips = {
        n["IPAddress"] for n in controller.attrs["NetworkSettings"]["Networks"].values()
    }
    sshd_log = controller.logs().decode(errors="replace")
    assert len(registered_engines(notebook)) == ENGINE_REPLICAS
    for engine in engines:
        engine.reload()
        (engine_ip,) = {
            n["IPAddress"] for n in engine.attrs["NetworkSettings"]["Networks"].values()
        }
        # The engine authenticated with its key to the tunnel user ...
        assert f"Accepted publickey for ipp from {engine_ip} " in sshd_log
        # ... its engine is registered (the supervisor's health lists its id) ...
        code, health = exec_text(engine, ["/usr/local/bin/healthcheck"])
        assert code == 0, health
        status = json.loads(health.strip().splitlines()[-1])
        assert status["registered"] == status["engines"] >= 1
        # ... and every connection it holds to the controller goes to the tunnel port.
        sockets = python_in(engine, SOCKETS, timeout=30)
        to_controller = [p for a, p in sockets["established"] if a in controller_ips]
        assert to_controller and set(to_controller) == {TUNNEL_PORT}, sockets["established"]


# With the engine's own, accepted key: a shell command and forwarding outside the engine
# ports must both be refused by sshd.
TUNNEL_USER = r"""
import json, os, paramiko
info = json.load(open("/srv/ipython/profile_default/security/ipcontroller-engine.json"))
user, _, hostport = info["ssh"].rpartition("@")
host, _, port = hostport.partition(":")
client = paramiko.SSHClient()
client.load_host_keys(os.path.expanduser("~/.ssh/known_hosts"))
client.connect(host, int(port), username=user, key_filename=os.path.expanduser("~/.ssh/id_engine"),
               look_for_keys=False, allow_agent=False, timeout=15)
_, stdout, _ = client.exec_command("id; cat /etc/passwd", timeout=15)
shell = {"output": stdout.read().decode(), "status": stdout.channel.recv_exit_status()}
forwards = {}
for target in (("127.0.0.1", 10101), ("127.0.0.1", 10111), ("127.0.0.1", 8888),
               ("azurite", 10000)):
    try:
        client.get_transport().open_channel("direct-tcpip", target, ("127.0.0.1", 0),
                                            timeout=15).close()
        forwards[f"{target[0]}:{target[1]}"] = "open"
    except paramiko.ChannelException as exc:
        forwards[f"{target[0]}:{target[1]}"] = exc.text
client.close()
print(json.dumps({"shell": shell, "forwards": forwards}))
"""


def test_tunnel_user_has_no_shell_and_forwards_only_to_engine_ports(
    engines: list[Container],
) -> None:
    result = python_in(engines[0], TUNNEL_USER, timeout=60)
    assert result["shell"]["status"] != 0
    assert "uid=" not in result["shell"]["output"]
    assert "root:" not in result["shell"]["output"]
    assert "not available" in result["shell"]["output"]  # nologin's message
    forwards = result["forwards"]
    assert forwards["127.0.0.1:10101"] == "open"
    for refused in ("127.0.0.1:10111", "127.0.0.1:8888", "azurite:10000"):
        assert forwards[refused] == "Administratively prohibited", forwards


def test_security_files_are_not_world_readable(controller: Container) -> None:
    code, out = exec_text(
        controller,
        [
            "stat",
            "-c",
            "%a %n",
            "/srv/ipython/profile_default/security",
            "/home/ipp/.sshd/hmac.key",
            "/home/ipp/.sshd/ssh_host_key",
        ],
    )
    assert code == 0, out
    modes = {Path(name).name: mode for mode, name in (line.split() for line in out.splitlines())}
    assert modes == {"security": "700", "hmac.key": "600", "ssh_host_key": "600"}, modes
