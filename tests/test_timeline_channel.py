"""The auditor's marker channel: a local Unix socket, and `phonehome mark`."""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonehome.analysis.timeline.channel import (
    DEFAULT_SOCKET,
    MAX_MESSAGE,
    MarkerChannelError,
    MarkerListener,
    send_marker,
)
from phonehome.commands import mark


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to ~100 bytes: keep them short
    path = Path(tempfile.mkdtemp(prefix="ph", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Recorder:
    def __init__(self) -> None:
        self.labels: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, label: str) -> None:
        with self.lock:
            self.labels.append(label)


@pytest.fixture
def listener(short_dir: Path) -> Iterator[tuple[MarkerListener, Recorder]]:
    recorder = Recorder()
    server = MarkerListener(short_dir / "m.sock", recorder)
    server.start()
    try:
        yield server, recorder
    finally:
        server.stop()


def raw_exchange(path: Path, payload: bytes) -> str:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(5)
    try:
        client.connect(str(path))
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        reply = b""
        for _ in range(64):  # bounded
            chunk = client.recv(1024)
            if not chunk:
                break
            reply += chunk
        return reply.decode()
    finally:
        client.close()


def test_round_trip(listener: tuple[MarkerListener, Recorder]) -> None:
    server, recorder = listener
    for label in ("meeting_join", "muted", "unmuted", "opt_out", "note.1:a-b"):
        send_marker(server.socket_path, label)
    # each call waits for the `ok` reply, which comes after the callback ran
    assert recorder.labels == ["meeting_join", "muted", "unmuted", "opt_out", "note.1:a-b"]


def test_socket_is_owner_only(listener: tuple[MarkerListener, Recorder]) -> None:
    server, _ = listener
    mode = server.socket_path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


@pytest.mark.parametrize(
    ("payload", "reply"),
    [
        (b"meeting_join\n", "ok meeting_join\n"),
        (b"meeting_join\r\n", "ok meeting_join\n"),
        (b"meeting_join", "ok meeting_join\n"),  # no newline, then EOF
        (b"Meeting_Join\n", "error: invalid label"),
        (b"\n", "error: invalid label"),
        (b"a b\n", "error: invalid label"),
        (b"../../etc\n", "error: invalid label"),
        (("x" * 65 + "\n").encode(), "error: invalid label"),
        (b"\xff\xfe\n", "error: invalid label"),
        (b"x" * (MAX_MESSAGE + 10), "error: message longer than"),
    ],
)
def test_server_answers_one_line(
    listener: tuple[MarkerListener, Recorder], payload: bytes, reply: str
) -> None:
    server, recorder = listener
    assert raw_exchange(server.socket_path, payload).startswith(reply)
    assert server.running
    assert recorder.labels == (["meeting_join"] if reply.startswith("ok") else [])


def test_callback_failure_is_answered_not_fatal(short_dir: Path) -> None:
    calls: list[str] = []

    def explode(label: str) -> None:
        calls.append(label)
        raise RuntimeError("boom")

    server = MarkerListener(short_dir / "m.sock", explode)
    server.start()
    try:
        with pytest.raises(MarkerChannelError, match="refused the marker"):
            send_marker(server.socket_path, "muted")
        assert server.running
        with pytest.raises(MarkerChannelError):
            send_marker(server.socket_path, "unmuted")
        assert calls == ["muted", "unmuted"]
    finally:
        server.stop()


def test_no_listener(short_dir: Path) -> None:
    with pytest.raises(MarkerChannelError, match="no phonehome addon is listening"):
        send_marker(short_dir / "none.sock", "muted")


def test_stale_socket_file_is_replaced(short_dir: Path) -> None:
    path = short_dir / "m.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    with pytest.raises(MarkerChannelError, match="no phonehome addon"):
        send_marker(path, "muted")
    recorder = Recorder()
    server = MarkerListener(path, recorder)
    server.start()
    try:
        send_marker(path, "muted")
    finally:
        server.stop()
    assert recorder.labels == ["muted"]
    assert not path.exists()


def test_second_listener_on_same_path_is_refused(
    listener: tuple[MarkerListener, Recorder],
) -> None:
    server, _ = listener
    with pytest.raises(MarkerChannelError, match="another phonehome addon"):
        MarkerListener(server.socket_path, lambda label: None).start()
    assert server.socket_path.exists()


def test_refuses_to_replace_a_regular_file(short_dir: Path) -> None:
    path = short_dir / "m.sock"
    path.write_text("keep me")
    with pytest.raises(MarkerChannelError, match="not a socket"):
        MarkerListener(path, lambda label: None).start()
    assert path.read_text() == "keep me"


def test_too_long_path(short_dir: Path) -> None:
    path = short_dir / ("d" * 120) / "m.sock"
    with pytest.raises(MarkerChannelError, match="too long"):
        MarkerListener(path, lambda label: None).start()
    with pytest.raises(MarkerChannelError, match="too long"):
        send_marker(path, "muted")


def test_creates_missing_parent_owner_only(short_dir: Path) -> None:
    path = short_dir / "reports" / "m.sock"
    server = MarkerListener(path, lambda label: None)
    server.start()
    try:
        assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    finally:
        server.stop()


def test_stop_is_idempotent_and_leaves_no_file(short_dir: Path) -> None:
    path = short_dir / "m.sock"
    server = MarkerListener(path, lambda label: None)
    server.start()
    server.start()  # already running: no-op
    server.stop()
    server.stop()
    assert not path.exists()
    assert not server.running


def test_stop_leaves_someone_elses_file(short_dir: Path) -> None:
    path = short_dir / "m.sock"
    server = MarkerListener(path, lambda label: None)
    server.start()
    os.unlink(path)
    path.write_text("new owner")
    server.stop()
    assert path.read_text() == "new owner"


@pytest.mark.parametrize("label", ["", "UPPER", "sp ace", "x" * 65, "naïve"])
def test_send_marker_checks_label_first(short_dir: Path, label: str) -> None:
    with pytest.raises(ValueError, match="invalid marker label"):
        send_marker(short_dir / "none.sock", label)


# --- `phonehome mark` --------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="phonehome")
    subparsers = parser.add_subparsers(dest="command", required=True)
    mark.register(subparsers)
    return parser.parse_args(argv)


def test_mark_default_socket() -> None:
    args = parse(["mark", "meeting_join"])
    assert args.socket == DEFAULT_SOCKET == Path("reports/.phonehome-markers.sock")
    assert args.func is mark.run


def test_mark_command_reaches_listener(listener: tuple[MarkerListener, Recorder]) -> None:
    server, recorder = listener
    out, err = io.StringIO(), io.StringIO()
    args = parse(["mark", "screen_share_start", "--socket", str(server.socket_path)])
    assert args.func(args, out=out, err=err) == 0
    assert recorder.labels == ["screen_share_start"]
    assert out.getvalue() == "marked screen_share_start\n"
    assert err.getvalue() == ""


@pytest.mark.parametrize(
    ("label", "message"),
    [("muted", "no phonehome addon is listening"), ("Bad Label", "invalid marker label")],
)
def test_mark_command_fails_with_one_line(short_dir: Path, label: str, message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    args = parse(["mark", label, "--socket", str(short_dir / "none.sock")])
    assert args.func(args, out=out, err=err) == 2
    assert out.getvalue() == ""
    assert err.getvalue().count("\n") == 1
    assert message in err.getvalue()
