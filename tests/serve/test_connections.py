"""What one client may hold, against a real server on 127.0.0.1 with real sockets: slow headers, unfinished
bodies, silent and idle connections, oversized headers and too many connections are cut off in time, while
normal requests go on and the file descriptors come back.

Bounded: timeouts of about a second; each test is over in a few seconds.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from loopline.core.errors import ConfigError
from loopline.serve import BackgroundServer, ServeSettings, create_app
from loopline.store import Store

RECORD = b'{"x": 0.3, "n": 4, "group": "a"}'
HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5
SLOW_CLIENTS = 50
TRICKLE_FOR = 20.0
"""Seconds a slow client keeps sending header lines (one every 0.25 s) unless the server cuts it off first."""
UVICORN_KEEPALIVE = 5.0
"""uvicorn's own keep-alive timeout: what a connection would get if ``keepalive_timeout`` were not applied."""


@pytest.fixture
def server(store: Store) -> Iterator[BackgroundServer]:
    settings = ServeSettings(
        header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT, keepalive_timeout=1.0, max_connections=200
    )
    with BackgroundServer(store, settings) as running:
        yield running


async def trickle_headers(port: int) -> tuple[float, bytes]:
    """Send a request line, then one header line every 0.25 s until the server closes; (seconds, bytes read)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(b"POST /predict/toy HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    read = asyncio.create_task(reader.read())
    try:
        while not read.done() and time.monotonic() - started < TRICKLE_FOR:
            await asyncio.sleep(0.25)
            writer.write(b"X-Slow: yes\r\n")
            try:
                await writer.drain()
            except ConnectionError:
                break
        answer = await asyncio.wait_for(read, timeout=5)
    finally:
        writer.close()
    return time.monotonic() - started, answer


async def half_a_body(port: int) -> tuple[float, bytes]:
    """Send the headers and half the declared body, then wait; (seconds until closed, bytes read)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    head = "POST /predict/toy HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    writer.write(f"{head}Content-Length: {len(RECORD)}\r\n\r\n".encode() + RECORD[: len(RECORD) // 2])
    try:
        answer = await asyncio.wait_for(reader.read(), timeout=20)
    finally:
        writer.close()
    return time.monotonic() - started, answer


async def silent(port: int, payload: bytes = b"") -> tuple[float, bytes]:
    """Connect, send ``payload`` (maybe nothing), then wait; (seconds until closed, bytes read)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(payload)
    try:
        answer = await asyncio.wait_for(reader.read(), timeout=20)
    finally:
        writer.close()
    return time.monotonic() - started, answer


async def normal_traffic(url: str, until: asyncio.Task[object]) -> list[int]:
    """Predictions one after another on fresh connections until ``until`` is done; their statuses."""
    statuses = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while not until.done() or not statuses:
            response = await client.post("/predict/toy", content=RECORD, headers={"content-type": "application/json"})
            statuses.append(response.status_code)
            await asyncio.sleep(0.02)
    return statuses


def server_sockets(server: BackgroundServer) -> list[str]:
    """The server's own accepted sockets still open in this process (not the listener), with their state."""
    connections = psutil.Process().net_connections(kind="tcp")
    return [c.status for c in connections if c.laddr and c.laddr.port == server.port and c.raddr]


def open_connections(server: BackgroundServer) -> int:
    return len(server._server.server_state.connections)


def test_slow_clients_are_cut_off_in_time_while_normal_requests_go_on(server: BackgroundServer) -> None:

    async def scenario() -> tuple[list[tuple[float, bytes]], tuple[float, bytes], tuple[float, bytes], list[int]]:
        slow = asyncio.gather(*(trickle_headers(server.port) for _ in range(SLOW_CLIENTS)))
        body, idle = asyncio.create_task(half_a_body(server.port)), asyncio.create_task(silent(server.port))
        everything = asyncio.ensure_future(asyncio.gather(slow, body, idle))
        statuses = await normal_traffic(server.url, everything)
        trickled, _, _ = await everything
        return trickled, body.result(), idle.result(), statuses

    trickled, body, idle, statuses = asyncio.run(scenario())

    # A slow client never pauses for a whole header timeout: only a total for the phase cuts it off, and it must
    # be the server that did, with its 408, while the client was still sending; not before the timeout. The body
    # and the silent connection: closed by the server, not by the 20 s wait of half_a_body/silent giving up.
    for seconds, answer in trickled:
        assert HEADER_TIMEOUT - 0.1 < seconds < TRICKLE_FOR
        assert answer.startswith(b"HTTP/1.1 408 ") and b"request headers took over 1.0 s" in answer
    assert body[0] > BODY_TIMEOUT - 0.1
    assert body[1].startswith(b"HTTP/1.1 408 ") and b"request body took over 1.5 s" in body[1]
    assert idle[0] > HEADER_TIMEOUT - 0.1 and idle[1] == b""  # it sent nothing: closed without an answer
    assert len(statuses) >= 10 and set(statuses) == {200}
    deadline = time.monotonic() + 30  # polled: the loop closes them as soon as it runs
    while open_connections(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_connections(server) == 0
    assert server_sockets(server) == []  # the server's ends are closed: their file descriptors are back
    metrics = httpx.get(f"{server.url}/metrics").text  # the app saw the cut-off body as a 408, not a crash
    assert 'loopline_errors_total{cause="http_408",model="toy"} 1.0' in metrics


def test_a_body_sent_in_pieces_within_the_limit_is_served(server: BackgroundServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = "POST /predict/toy HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}Content-Length: {len(RECORD)}\r\n\r\n".encode())
        for start in range(0, len(RECORD), 12):
            time.sleep(0.3)
            sock.sendall(RECORD[start : start + 12])
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_kept_alive_connection_is_reused_then_closed_when_idle(server: BackgroundServer) -> None:
    request = b"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        time.sleep(0.5)
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        assert sock.recv(65536) == b""  # closed by the keep-alive timeout (1 s), not the client's (10 s)
        assert time.monotonic() - started < UVICORN_KEEPALIVE  # the setting, not uvicorn's default, closed it


def test_oversized_headers_get_a_431_and_the_connection_closes(store: Store) -> None:
    with BackgroundServer(store, ServeSettings(max_header_bytes=4096)) as server:
        filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        _, answer = asyncio.run(silent(server.port, b"GET /v2/health/ready HTTP/1.1\r\n" + filler * 8))
        assert answer.startswith(b"HTTP/1.1 431 ") and b"over 4096 bytes" in answer
        whole = b"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n" + filler * 8 + b"\r\n"  # in one read
        _, answer = asyncio.run(silent(server.port, whole))
        assert answer.startswith(b"HTTP/1.1 431 ") and b"over 4096 bytes" in answer
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200


def test_connections_past_the_cap_get_a_503_at_once(store: Store) -> None:
    with BackgroundServer(store, ServeSettings(max_connections=5)) as server:
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(5)]
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as extra:
                started = time.monotonic()
                answer = extra.recv(65536)
                assert answer.startswith(b"HTTP/1.1 503 ") and b"too many open connections" in answer
                assert extra.recv(65536) == b""
                # it sent nothing: refused on connecting, not when its header timeout (10 s) ran out
                assert time.monotonic() - started < ServeSettings().header_timeout
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 30  # polled: the loop closes them as soon as it runs
        while open_connections(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("header_timeout", 0.0, "header_timeout is 0.0 s; it must be above 0"),
        ("body_timeout", float("nan"), "body_timeout is nan s; it must be above 0"),
        ("keepalive_timeout", -1.0, "keepalive_timeout is -1.0 s"),
        ("max_connections", 0, "max_connections is 0; it must be at least 1"),
        ("max_header_bytes", 100, "max_header_bytes is 100; it must be at least 1024"),
    ],
)
def test_limits_that_cannot_work_are_refused(store: Store, key: str, value: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app(store, ServeSettings(**{key: value}))
