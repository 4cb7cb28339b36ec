"""Enforce mode on client-to-server WebSocket messages, through a real mitmdump to a
small local WebSocket echo server (wsproto, which mitmproxy ships) that records what
arrives: telemetry messages are rewritten or dropped before the server sees them."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Request,
    TextMessage,
)

from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess

pytestmark = pytest.mark.e2e

EMAIL = "jane.roe@example.org"
PACK = """\
pack: wstest
vendor: WS Test
rules:
  - id: ws-telemetry
    title: telemetry over a WebSocket
    purpose: telemetry
    match: {filter: '~websocket & ~u "/ws-telemetry"'}
  - id: ws-telemetry-blocked
    title: telemetry over a WebSocket, blocked by the rule
    purpose: telemetry
    action: block
    match: {filter: '~websocket & ~u "/ws-blocked"'}
  - id: ws-chat
    title: chat over a WebSocket
    purpose: service
    match: {filter: '~websocket & ~u "/ws-chat"'}
"""
TIMEOUT = 20.0


class EchoServer:
    """Accepts WebSocket connections on loopback, records each message, echoes it back."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.received: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> EchoServer:
        self.accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for thread in self.threads:
            thread.join(TIMEOUT)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        path = ""
        conn.settimeout(TIMEOUT)
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        path = event.target
                        conn.sendall(ws.send(AcceptConnection()))
                    elif isinstance(event, TextMessage):
                        with self.lock:
                            self.received.append((path, event.data))
                        conn.sendall(ws.send(Message(data=event.data)))
                    elif isinstance(event, CloseConnection):
                        conn.sendall(ws.send(event.response()))
                        return


class Client:
    """A WebSocket client through the proxy's CONNECT tunnel."""

    def __init__(self, proxy_port: int, server_port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=TIMEOUT)
        target = f"127.0.0.1:{server_port}"
        self.sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            assert chunk, "proxy closed the tunnel"
            head += chunk
        assert head.split(b" ", 2)[1] == b"200", head
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=target, target=path)))
        self._wait(AcceptConnection)

    def _wait(self, kind: type) -> object:
        for _ in range(1000):
            for event in self.ws.events():
                if isinstance(event, kind):
                    return event
            data = self.sock.recv(65536)
            assert data, f"connection closed while waiting for {kind.__name__}"
            self.ws.receive_data(data)
        raise AssertionError(f"no {kind.__name__}")

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(Message(data=text)))

    def echo(self) -> str:
        event = self._wait(TextMessage)
        assert isinstance(event, TextMessage)
        return event.data

    def close(self) -> None:
        """Close and wait for the server's answer: every message before it was handled."""
        self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        self._wait(CloseConnection)
        self.sock.close()


def _message(n: int, email: str | None = EMAIL) -> str:
    body = {"event": "client.call.initiated", "n": n, "pi": 3.14159265358979323846}
    if email:
        body["userEmail"] = email
    return json.dumps(body)


def test_websocket_messages_are_enforced(tmp_path: Path) -> None:
    (tmp_path / "identity.yaml").write_text(f"email: {EMAIL}\n")
    (tmp_path / "pack.yaml").write_text(PACK)
    reports = tmp_path / "reports"
    options = {"phonehome_identity": str(tmp_path / "identity.yaml"),
               "phonehome_rules": str(tmp_path / "pack.yaml"),
               "phonehome_report_dir": str(reports), "phonehome_formats": "json",
               "phonehome_quiet": "true", "phonehome_enforce": "redact"}
    echoes = {}
    with EchoServer() as server:
        with MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT], options=options) as proxy:
            for path in ("/ws-telemetry", "/ws-blocked", "/ws-chat"):
                client = Client(proxy.port, server.port, path)
                client.send(_message(1))
                client.send(_message(2, email=None))
                if path != "/ws-blocked":
                    echoes[path] = [client.echo(), client.echo()]
                client.close()
        received = list(server.received)
    by_path: dict[str, list[str]] = {}
    for path, text in received:
        by_path.setdefault(path, []).append(text)

    # telemetry: the e-mail is rewritten before the server sees it, nothing else changes
    first, second = by_path["/ws-telemetry"]
    assert EMAIL not in first
    sent = _message(1)
    head, _, tail = sent.partition(EMAIL)
    assert first.startswith(head) and first.endswith(tail) and len(first) > len(head + tail)
    assert second == _message(2, email=None)
    assert echoes["/ws-telemetry"] == [first, second]  # the server echoed what it got
    # the rule says block: every message is dropped (the close still went through)
    assert by_path.get("/ws-blocked", []) == []
    # service traffic is left alone
    assert by_path["/ws-chat"] == [_message(1), _message(2, email=None)]

    report = json.loads((reports / "audit.json").read_text())
    actions = [(f["url"].rsplit("/", 1)[-1], f["enforcement"]["action"])
               for f in report["flows"] if f["kind"] == "websocket"]
    assert ("ws-telemetry", "redacted") in actions
    assert ("ws-blocked", "blocked") in actions
    assert ("ws-chat", "passed") in actions
