"""gunicorn with the project's settings lets go of a connection once its request is read whole, and keeps
gunicorn's lingering close for a request whose body the app left unread (survey/server_close.py).

Whether the worker still holds the server's end of a connection is read from the kernel's socket table:
a socket that no process holds any more shows inode 0 in /proc/net/tcp.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.live import gunicorn, prepare_database

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")


@contextmanager
def production_server(tmp_path: Path) -> Iterator[int]:
    """gunicorn with gunicorn.conf.py and one sync worker, so that a lingering worker would hold up the next client."""
    with gunicorn(prepare_database(f"sqlite:///{tmp_path}/survey.sqlite3"), workers=1, threads=None) as port:
        yield port


def exchange(port: int, request: bytes) -> tuple[socket.socket, bytes]:
    """Send ``request`` and read the response up to the server's end of stream; the socket stays open."""
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(request)
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return client, received


def server_end_held(port: int, client: socket.socket) -> bool:
    """Whether a process still holds the server's socket of ``client``'s connection."""

    def hex_address(address: tuple[str, int]) -> str:
        return f"{socket.inet_aton(address[0])[::-1].hex().upper()}:{address[1]:04X}"

    local, remote = hex_address(("127.0.0.1", port)), hex_address(client.getsockname())
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return fields[9] != "0"
    return False  # gone from the table altogether


def test_a_request_read_whole_is_let_go_of_at_once_and_the_next_client_is_served(tmp_path):
    with production_server(tmp_path) as port:
        first, response = exchange(port, b"GET /health HTTP/1.1\r\nHost: survey\r\n\r\n")
        try:
            assert response.startswith(b"HTTP/1.1 200 ")
            # The client has not closed, yet the worker has already let go (gunicorn alone would read
            # on for up to 2 s, waiting for the client's close, and serve nobody meanwhile).
            assert not server_end_held(port, first)
            second, response = exchange(port, b"GET /health HTTP/1.1\r\nHost: survey\r\n\r\n")
            second.close()
            assert response.startswith(b"HTTP/1.1 200 ")
        finally:
            first.close()


def test_a_body_the_app_did_not_read_gets_its_whole_response_and_a_lingering_close(tmp_path):
    body = b'{"answers": {}}'
    with production_server(tmp_path) as port:
        # /health takes no POST: the 405 is decided from the request line, the body is never read.
        client, response = exchange(
            port,
            b"POST /health HTTP/1.1\r\nHost: survey\r\nContent-Type: application/json\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body,
        )
        try:
            head, _, content = response.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 405 ")
            headers = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:])
            assert len(content) == int(headers[b"content-length"])  # the response arrived whole
            assert server_end_held(port, client)  # gunicorn drains what the client may still send
        finally:
            client.close()
