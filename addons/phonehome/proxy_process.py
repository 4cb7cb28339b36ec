"""Running a real `mitmdump` with the phonehome addon, on loopback.

Used by `phonehome demo` and by the end-to-end tests. Every wait is bounded,
and the process is always stopped: SIGINT first (so the addon's `done()`
writes its reports), then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ADDON_SCRIPT",
    "MitmdumpProcess",
    "free_port",
    "mitmdump_executable",
    "wait_for_port",
]

ADDON_SCRIPT = Path(__file__).resolve().parent.parent / "phonehome_audit.py"
"""`addons/phonehome_audit.py` in a checkout; absent in a wheel (see `addon_script`)."""


def addon_script(workdir: Path) -> Path:
    """The `-s` script: the checkout's, or a two-line copy for an installed wheel."""
    if ADDON_SCRIPT.is_file():
        return ADDON_SCRIPT
    script = workdir / "phonehome_audit.py"
    script.write_text("from phonehome.addon import make_addons\naddons = make_addons()\n")
    return script


def mitmdump_executable() -> str:
    """mitmdump from this interpreter's environment first, then PATH."""
    local = Path(sys.executable).parent / "mitmdump"
    if local.is_file():
        return str(local)
    found = shutil.which("mitmdump")
    if found is None:
        raise FileNotFoundError("mitmdump not found: install phonehome (it depends on mitmproxy)")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0,
                  process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited early with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


class MitmdumpProcess:
    """`with MitmdumpProcess(confdir, scripts=[...], options={...}) as proxy: proxy.url`"""

    def __init__(
        self,
        confdir: Path,
        *,
        scripts: Sequence[Path] = (),
        options: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        log_path: Path | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.confdir = Path(confdir)
        self.port = port or free_port()
        self.log_path = log_path or self.confdir / "mitmdump.log"
        self.args = [mitmdump_executable(), "--listen-host", "127.0.0.1",
                     "--listen-port", str(self.port), "--set", f"confdir={self.confdir}"]
        for script in scripts:
            self.args += ["-s", str(script)]
        for key, value in (options or {}).items():
            self.args += ["--set", f"{key}={value}"]
        self.args += list(extra_args)
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def start(self, timeout: float = 60.0) -> MitmdumpProcess:
        self.confdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.cwd, env={**os.environ, **(self.env or {})}, start_new_session=True,
        )
        try:
            wait_for_port(self.port, timeout=timeout, process=self.process)
            deadline = time.monotonic() + timeout
            while not self.ca_cert.is_file() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not self.ca_cert.is_file():
                raise TimeoutError(f"mitmdump made no CA in {self.confdir}")
        except BaseException:
            self.stop()
            raise RuntimeError(f"mitmdump did not start; log:\n{self.output()}") from None
        return self

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL; returns the exit code."""
        process = self.process
        if process is None:
            return None
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if process.poll() is not None:
                break
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()
        return process.poll()

    def kill(self) -> None:
        """SIGKILL now, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> MitmdumpProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
