"""Auditor markers from a second terminal, over a local Unix domain socket.

Protocol: the client sends one line, `LABEL\\n`; the server answers one line,
`ok LABEL` or `error: reason`. Nothing leaves the machine: the socket is a
file, owner-only (0600), and a message is at most `MAX_MESSAGE` bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from ...bundled import DEFAULT_REPORT_DIR
from .markers import is_valid_label

__all__ = [
    "DEFAULT_SOCKET",
    "MAX_MESSAGE",
    "MarkerChannelError",
    "MarkerListener",
    "send_marker",
]

DEFAULT_SOCKET = DEFAULT_REPORT_DIR / ".phonehome-markers.sock"
MAX_MESSAGE = 256
"""Bytes read per connection; a longer message is refused."""
_CONNECTION_TIMEOUT = 2.0
_ACCEPT_POLL = 0.2
_DRAIN_CHUNKS = 16  # at most 64 KiB read and dropped after answering
_MAX_PATH = 104  # sun_path is 108 bytes on Linux, 104 on macOS


class MarkerChannelError(RuntimeError):
    """The marker channel could not be opened or used; the message says why."""


def _check_path_length(path: Path) -> None:
    if len(os.fsencode(path)) >= _MAX_PATH:
        raise MarkerChannelError(
            f"socket path {str(path)!r} is too long for a Unix socket "
            f"(at most {_MAX_PATH - 1} bytes); choose a shorter path"
        )


def _read_line(conn: socket.socket) -> bytes | None:
    """The first line (without newline), or None when it is longer than MAX_MESSAGE."""
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(MAX_MESSAGE + 1 - len(data))
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_MESSAGE:
            return None
    line = data.split(b"\n", 1)[0]
    return line.rstrip(b"\r")


class MarkerListener:
    """Accepts marker labels on a Unix socket and hands them to `on_marker`.

    One background thread; each connection is served in turn with a short
    timeout, so a stuck client cannot hold the listener for long.
    """

    def __init__(self, socket_path: Path, on_marker: Callable[[str], None]) -> None:
        self.socket_path = Path(socket_path)
        self._on_marker = on_marker
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._inode: int | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _clear_stale(self) -> None:
        """Remove a left-over socket file nobody listens on; refuse anything else."""
        try:
            mode = self.socket_path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise MarkerChannelError(f"{self.socket_path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(_CONNECTION_TIMEOUT)
        try:
            probe.connect(str(self.socket_path))
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            return
        except OSError as e:
            raise MarkerChannelError(f"cannot check {self.socket_path}: {e}") from e
        finally:
            probe.close()
        raise MarkerChannelError(f"another phonehome addon is listening on {self.socket_path}")

    def start(self) -> None:
        """Bind the socket (0600) and start serving. MarkerChannelError if it cannot."""
        if self.running:
            return
        _check_path_length(self.socket_path)
        parent = self.socket_path.parent
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._clear_stale()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(str(self.socket_path))
            os.chmod(self.socket_path, 0o600)
            server.listen(8)
            server.settimeout(_ACCEPT_POLL)
        except OSError as e:
            server.close()
            raise MarkerChannelError(f"cannot listen on {self.socket_path}: {e}") from e
        self._inode = self.socket_path.stat().st_ino
        self._server = server
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="phonehome-markers", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and remove its file (only if still ours)."""
        self._stop.set()
        if self.running:
            _wake(self.socket_path)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            if self._inode is not None and self.socket_path.stat().st_ino == self._inode:
                self.socket_path.unlink()
        self._inode = None

    def _serve(self) -> None:
        server = self._server
        assert server is not None
        while not self._stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            with conn:
                if self._stop.is_set():
                    return
                with contextlib.suppress(OSError):
                    self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(_CONNECTION_TIMEOUT)
        line = _read_line(conn)
        if line is None:
            _answer(conn, f"error: message longer than {MAX_MESSAGE} bytes")
            return
        label = line.decode("utf-8", "replace").strip()
        if not is_valid_label(label):
            _answer(conn, "error: invalid label; use 1-64 characters of a-z 0-9 _ . : -")
            return
        try:
            self._on_marker(label)
        except Exception as e:  # the callback must never stop the listener
            _answer(conn, f"error: marker not recorded: {type(e).__name__}")
            return
        _answer(conn, f"ok {label}")


def _wake(path: Path) -> None:
    """Connect once so a waiting accept() returns and sees the stop flag."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(_ACCEPT_POLL)
        c.connect(str(path))


def _answer(conn: socket.socket, line: str) -> None:
    """Send one line, then drain (bounded) what the client still sends, so
    closing does not reset the connection before the client reads the answer."""
    conn.sendall(f"{line}\n".encode())
    conn.shutdown(socket.SHUT_WR)
    for _ in range(_DRAIN_CHUNKS):
        if not conn.recv(4096):
            break


def send_marker(socket_path: Path, label: str, timeout: float = 2.0) -> None:
    """Send one marker label to a running addon.

    ValueError for an invalid label; MarkerChannelError when no addon is
    listening or the addon refuses the label.
    """
    if not is_valid_label(label):
        raise ValueError(
            f"invalid marker label {label[:80]!r}: use 1-64 characters of a-z 0-9 _ . : -"
        )
    path = Path(socket_path)
    _check_path_length(path)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    try:
        try:
            client.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise MarkerChannelError(f"no phonehome addon is listening on {path}") from e
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
                raise MarkerChannelError(f"no phonehome addon is listening on {path}") from e
            raise MarkerChannelError(f"cannot reach {path}: {e}") from e
        try:
            client.sendall(f"{label}\n".encode())
            reply = _read_line(client)
        except OSError as e:
            raise MarkerChannelError(f"no answer from the addon on {path}: {e}") from e
    finally:
        client.close()
    text = (reply or b"").decode("utf-8", "replace")
    if text != f"ok {label}":
        raise MarkerChannelError(f"the addon refused the marker: {text or 'no answer'}")
