"""A local HTTPS server standing in for the vendor's hosts and third parties.

Run it alone with `python -m phonehome.simulate.vendor_server --port N --record F`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import ipaddress
import json
import signal
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .vendor_replies import Reply, route

__all__ = ["VendorServer", "make_certificate", "read_record", "main"]

MAX_BODY = 16 * 1024 * 1024
"""Requests with a larger body are refused (413) and still recorded, without the body."""


# --- certificate ------------------------------------------------------------


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A fresh self-signed EC certificate for localhost; returns (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "phonehome simulator")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "vendor-cert.pem", directory / "vendor-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def _server_context(cert: Path, key: Path, sni_seen: Callable[[ssl.SSLObject, str], None]
                    ) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2", "http/1.1"])

    def on_sni(conn: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        if server_name:
            sni_seen(conn, server_name)
        return None  # any name is fine; the one certificate answers all

    context.sni_callback = on_sni
    return context


# --- recording --------------------------------------------------------------


class _Recorder:
    """Appends one JSON line per request and flushes it at once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._seq = 0

    def write(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, **entry}
            self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
            self._file.flush()

    @property
    def count(self) -> int:
        with self._lock:
            return self._seq

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_record(path: Path) -> list[dict[str, Any]]:
    """The recorded requests, with `body` (bytes) added back from base64."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            entry["body"] = base64.b64decode(entry["body_b64"])
            entries.append(entry)
    return entries


# --- HTTP -------------------------------------------------------------------


def _entry(received: float, method: str, host: str, sni: str | None, target: str,
           http_version: str, headers: list[list[str]], body: bytes, status: int
           ) -> dict[str, Any]:
    split = urlsplit(target)
    return {
        "timestamp": received,
        "method": method,
        "host": host,
        "sni": sni,
        "path": split.path,
        "query": split.query,
        "http_version": http_version,
        "headers": headers,
        "body_b64": base64.b64encode(body).decode("ascii"),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_size": len(body),
        "status": status,
    }


def _payload(reply: Reply) -> bytes:
    return b"" if reply.body is None else json.dumps(reply.body).encode()


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "phonehome-sim"
    sys_version = ""
    timeout = 60
    server: _HTTPSServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return  # quiet: the record is the log

    def _read_body(self) -> tuple[bytes, bool]:
        """The request body and whether it fit under MAX_BODY."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    break
                total += size
                if total > MAX_BODY:
                    return b"", False
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks), True
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            return b"", False
        return self.rfile.read(length) if length > 0 else b"", True

    def _handle(self) -> None:
        received = time.time()
        try:
            body, fits = self._read_body()
        except ValueError:
            self.send_error(400)
            return
        host = self.headers.get("Host", "")
        path = urlsplit(self.path).path
        reply = route(self.command, host.split(":")[0], path, body) if fits else Reply(413)
        self.server.recorder.write(_entry(
            received, self.command, host, self.server.sni_of(self.connection), self.path,
            self.request_version, [[k, v] for k, v in self.headers.items()], body,
            reply.status))
        payload = _payload(reply)
        self.send_response(reply.status)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def _serve_h2(tls: ssl.SSLSocket, server: _HTTPSServer) -> None:
    """One HTTP/2 connection: every stream is recorded and answered like HTTP/1.1."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    streams: dict[int, tuple[float, list[tuple[str, str]], bytearray]] = {}
    while True:
        data = tls.recv(65536)
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                streams[event.stream_id] = (time.time(), list(event.headers), bytearray())
            elif isinstance(event, h2.events.DataReceived):
                if event.stream_id in streams:
                    body = streams[event.stream_id][2]
                    if len(body) + len(event.data) <= MAX_BODY:
                        body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in streams:
                _answer_h2(conn, event.stream_id, *streams.pop(event.stream_id), tls, server)
            elif isinstance(event, h2.events.ConnectionTerminated):
                tls.sendall(conn.data_to_send())
                return
        tls.sendall(conn.data_to_send())


def _answer_h2(conn: h2.connection.H2Connection, stream_id: int, received: float,
               headers: list[tuple[str, str]], body: bytearray, tls: ssl.SSLSocket,
               server: _HTTPSServer) -> None:
    pseudo = {k: v for k, v in headers if k.startswith(":")}
    regular = [[k, v] for k, v in headers if not k.startswith(":")]
    method, target = pseudo.get(":method", "GET"), pseudo.get(":path", "/")
    host = pseudo.get(":authority") or next((v for k, v in regular if k == "host"), "")
    reply = route(method, host.split(":")[0], urlsplit(target).path, bytes(body))
    server.recorder.write(_entry(received, method, host, server.sni_of(tls), target,
                                 "HTTP/2.0", regular, bytes(body), reply.status))
    payload = _payload(reply)
    response = [(":status", str(reply.status)), ("content-length", str(len(payload))),
                ("server", _RequestHandler.server_version)]
    if payload:
        response.append(("content-type", "application/json"))
    conn.send_headers(stream_id, response, end_stream=not payload)
    if payload:
        conn.send_data(stream_id, payload, end_stream=True)


class _HTTPSServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins every connection thread
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], cert: Path, key: Path,
                 recorder: _Recorder) -> None:
        super().__init__(address, _RequestHandler)
        self.recorder = recorder
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._sni: dict[int, str] = {}
        self.ssl_context = _server_context(cert, key, self._remember_sni)

    def _remember_sni(self, conn: Any, name: str) -> None:
        with self._lock:
            self._sni[id(conn)] = name

    def sni_of(self, conn: Any) -> str | None:
        with self._lock:
            return self._sni.get(id(conn))

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs in the connection's own thread, so a slow handshake blocks no one.
        with self._lock:
            self._open.add(request)
        tls = None
        try:
            request.settimeout(30)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
            with self._lock:
                self._open.discard(request)
                self._open.add(tls)
            if tls.selected_alpn_protocol() == "h2":
                _serve_h2(tls, self)
            else:
                self.RequestHandlerClass(tls, client_address, self)
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
            pass  # the peer went away or the server is stopping
        finally:
            with self._lock:
                self._open.discard(request)
                if tls is not None:
                    self._open.discard(tls)
                    self._sni.pop(id(tls), None)
            if tls is not None:
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # connection errors are routine here; never print tracebacks

    def close_connections(self) -> None:
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class VendorServer:
    """The local HTTPS vendor stand-in. `start()` returns the port; `stop()` joins all threads.

        with VendorServer(Path("record.jsonl")) as server:
            port = server.port

    It accepts any Host header and any SNI with one self-signed certificate made at
    start (the proxy in front runs with ssl_insecure), answers plausible JSON for
    the Webex endpoints the simulator calls, and records every request it receives
    as one JSON line, flushed per request. It speaks HTTP/1.1 with keep-alive and
    HTTP/2 (when the proxy offers h2 in ALPN):

        {"seq", "timestamp", "method", "host", "sni", "path", "query", "http_version",
         "headers": [[name, value], …], "body_b64", "body_sha256", "body_size", "status"}
    """

    def __init__(self, record_path: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.record_path = Path(record_path)
        self.host = host
        self._requested_port = port
        self._server: _HTTPSServer | None = None
        self._thread: threading.Thread | None = None
        self._recorder: _Recorder | None = None
        self._certdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("VendorServer is not running")
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        """"host:port", the form the resolver addon's option takes."""
        return f"{self.host}:{self.port}"

    @property
    def requests_recorded(self) -> int:
        return self._recorder.count if self._recorder else 0

    def start(self) -> int:
        if self._server is not None:
            raise RuntimeError("VendorServer already started")
        self._certdir = tempfile.TemporaryDirectory(prefix="phonehome-vendor-")
        cert, key = make_certificate(Path(self._certdir.name))
        self._recorder = _Recorder(self.record_path)
        try:
            self._server = _HTTPSServer((self.host, self._requested_port), cert, key,
                                        self._recorder)
        except OSError:
            self._recorder.close()
            self._certdir.cleanup()
            self._recorder = self._certdir = None
            raise
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="phonehome-vendor-server", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        if self._thread is not None:
            self._thread.join()
        server.close_connections()
        server.server_close()  # joins the connection threads
        if self._recorder is not None:
            self._recorder.close()
        if self._certdir is not None:
            self._certdir.cleanup()
        self._thread = self._recorder = self._certdir = None

    def __enter__(self) -> VendorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phonehome.simulate.vendor_server",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", type=Path, required=True, metavar="FILE")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        with VendorServer(args.record, args.host, args.port) as server:
            print(f"vendor server listening on {server.address}, recording to {args.record}",
                  flush=True)
            try:
                while not stopping.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
