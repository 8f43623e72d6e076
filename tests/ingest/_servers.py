"""Helpers of the broker tests: private broker processes on free ports (for tests that restart or kill
them; never the system ones), and draining a source."""

from __future__ import annotations

import getpass
import json
import socket
import subprocess
import time
from pathlib import Path

from loopline.ingest import Batch, Limits, Source


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateServer:
    """A server process on ``port``, restartable; ``start`` returns once the port accepts connections."""

    def __init__(self, name: str, args: list[str], port: int) -> None:
        self.name = name
        self.args = args
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"private {self.name} did not start on port {self.port}")

    def stop(self) -> None:
        """Graceful stop: brokers write their persistence files."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def mosquitto(folder: Path, deny_subscribe: list[str] | None = None) -> PrivateServer:
    """Mosquitto with the zero-loss settings the README documents; ``deny_subscribe``: topic patterns whose
    subscription the broker refuses to anonymous clients (SUBACK "Not authorized", by its dynamic-security
    plugin; the test is skipped where the plugin is not installed)."""
    port = free_port()
    conf = folder / "mosquitto.conf"
    extra = ""
    if deny_subscribe is not None:
        extra = _dynamic_security(folder, deny_subscribe)
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {folder}/\nautosave_interval 1\nmax_queued_messages 0\n"
        f"max_inflight_messages 0\nlog_dest none\nuser {getpass.getuser()}\n" + extra  # root would drop to 'mosquitto'
    )
    return PrivateServer("mosquitto", ["mosquitto", "-c", str(conf)], port)


def _dynamic_security(folder: Path, deny_subscribe: list[str]) -> str:
    import glob

    import pytest

    plugins = glob.glob("/usr/lib/*/mosquitto_dynamic_security.so") + glob.glob("/usr/lib/mosquitto*/*dynamic*.so")
    if not plugins:
        pytest.fail("Mosquitto's dynamic-security plugin is not installed: install Debian's mosquitto package")
    acls = [{"acltype": "subscribePattern", "topic": t, "priority": 0, "allow": False} for t in deny_subscribe]
    config = {
        "defaultACLAccess": dict.fromkeys(
            ["publishClientSend", "publishClientReceive", "subscribe", "unsubscribe"], True
        ),
        "clients": [],
        "groups": [{"groupname": "anonymous", "roles": [{"rolename": "deny"}], "clients": []}],
        "roles": [{"rolename": "deny", "acls": acls}],
        "anonymousGroup": "anonymous",
    }
    (folder / "dynsec.json").write_text(json.dumps(config))
    return f"plugin {plugins[0]}\nplugin_opt_config_file {folder / 'dynsec.json'}\n"


def nats_server(folder: Path, config: str | None = None) -> PrivateServer:
    """nats-server with JetStream storing in ``folder``; ``config``: the text of a config file (users...)."""
    port = free_port()
    args = ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(folder)]
    if config is not None:
        (folder / "nats.conf").write_text(config)
        args += ["-c", str(folder / "nats.conf")]
    return PrivateServer("nats-server", args, port)


def redis_server(folder: Path) -> PrivateServer:
    """redis-server with an fsync-always append-only file in ``folder``."""
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    args += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    return PrivateServer("redis-server", args, port)


def drain(source: Source, *, ack: bool, limits: Limits) -> list[Batch]:
    """Every batch a source has now, acknowledged one by one when ``ack``; the source is closed after."""
    out = []
    for batch in source.batches(None, limits=limits):
        out.append(batch)
        if ack:
            source.ack(batch)
    source.close()
    return out


def ids(batches: list[Batch]) -> list[str]:
    """The message ids of the batches, in order."""
    return [i for b in batches for i in (b.ids or [])]
