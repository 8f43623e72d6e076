"""Helpers of the broker tests: private broker processes on free ports (for tests that restart or kill
them; never the system ones), and draining a source."""

from __future__ import annotations

import getpass
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


def mosquitto(folder: Path) -> PrivateServer:
    """Mosquitto with the zero-loss settings the README documents."""
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {folder}/\nautosave_interval 1\nmax_queued_messages 0\n"
        f"max_inflight_messages 0\nlog_dest none\nuser {getpass.getuser()}\n"  # root would drop to 'mosquitto'
    )
    return PrivateServer("mosquitto", ["mosquitto", "-c", str(conf)], port)


def nats_server(folder: Path) -> PrivateServer:
    """nats-server with JetStream storing in ``folder``."""
    port = free_port()
    return PrivateServer(
        "nats-server", ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(folder)], port
    )


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
