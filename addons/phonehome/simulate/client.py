"""The simulated app's HTTP side: httpx through the proxy, trusting its CA."""

from __future__ import annotations

import gzip
import json
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .leaks import Plant

__all__ = ["Request", "Sent", "Sender", "SimulationError"]

USER_AGENT = "Webex/44.10.0.30906 (Mac OS X 14.5; arm64) webex-desktop"


class SimulationError(RuntimeError):
    """The simulated session could not reach the proxy or the vendor stand-in."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request of the simulated app."""

    method: str
    url: str
    phase: str
    purpose: str = "telemetry"
    """telemetry, service or auth (DESIGN.md purposes)."""
    json: Any = None
    content: bytes | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    gzip: bool = False
    events: tuple[str, ...] = ()
    plants: tuple[Plant, ...] = ()
    http2: bool = False
    vendor: bool = True
    """Vendor requests carry the SDK's trackingid and bearer headers."""
    trigger: str | None = None
    """The true trigger where it is not the phase's: an error report sent during sign-in."""

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass(frozen=True, slots=True)
class Sent:
    request: Request
    status: int
    timestamp: float
    tracking_id: str | None
    reply: Any = field(default=None, repr=False)


def _body(request: Request) -> tuple[bytes | None, dict[str, str]]:
    headers: dict[str, str] = {}
    if request.json is not None:
        data = json.dumps(request.json, separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
    else:
        data = request.content
    if request.content_type:
        headers["Content-Type"] = request.content_type
    if data is not None and request.gzip:
        data = gzip.compress(data, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return data, headers


class Sender:
    """Sends `Request`s in order over two pooled clients (HTTP/1.1, and HTTP/2 when offered)."""

    def __init__(self, proxy_url: str, ca_cert: Path, session_id: str, timeout: float = 20.0):
        try:
            context = ssl.create_default_context(cafile=str(ca_cert))
        except (OSError, ssl.SSLError) as e:
            raise SimulationError(f"cannot load CA certificate {ca_cert}: {e}") from e
        options = {"proxy": proxy_url, "verify": context, "trust_env": False,
                   "timeout": timeout, "headers": {"User-Agent": USER_AGENT}}
        self._h1 = httpx.Client(http2=False, **options)
        self._h2 = httpx.Client(http2=True, **options)
        self._session_id = session_id
        self._seq = 0
        self.token = ""
        self.device_url = ""
        self.by_host: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()

    def close(self) -> None:
        self._h1.close()
        self._h2.close()

    def send(self, request: Request, now: float) -> Sent:
        data, headers = _body(request)
        tracking_id = None
        if request.vendor:
            self._seq += 1
            tracking_id = f"{self._session_id}_{self._seq}"
            headers["trackingid"] = tracking_id
            if self.token and request.purpose != "auth":
                headers["Authorization"] = f"Bearer {self.token}"
            if self.device_url:
                headers["cisco-device-url"] = self.device_url
        for name, value in request.headers:
            headers[name] = value
        client = self._h2 if request.http2 else self._h1
        for attempt in range(3):  # like a real app, retry a dropped connection
            try:
                response = client.request(request.method, request.url, content=data,
                                          headers=headers)
                break
            except (httpx.RemoteProtocolError, httpx.ConnectError) as e:
                if attempt == 2:
                    raise SimulationError(f"{request.method} {request.url} failed: {e}") from e
                time.sleep(0.2)
            except httpx.HTTPError as e:
                raise SimulationError(f"{request.method} {request.url} failed: {e}") from e
        self.by_host[request.host] += 1
        self.statuses[response.status_code] += 1
        reply: Any = None
        if response.content and "json" in response.headers.get("content-type", ""):
            try:
                reply = response.json()
            except ValueError:
                reply = None
        return Sent(request, response.status_code, now, tracking_id, reply)

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
