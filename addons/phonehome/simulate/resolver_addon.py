"""mitmproxy addon: send every upstream connection to one local address.

    mitmdump -s resolver_addon.py --set phonehome_sim_upstream=127.0.0.1:8443

Loaded by path with `mitmdump -s`, so it imports nothing from the phonehome package.
"""

from __future__ import annotations

from mitmproxy import ctx, exceptions
from mitmproxy.proxy import server_hooks

__all__ = ["OPTION", "parse_upstream", "ResolveAll", "addons"]

OPTION = "phonehome_sim_upstream"


def parse_upstream(spec: str) -> tuple[str, int] | None:
    """"host:port" (or "[v6]:port") to an address; "" means off. Raises ValueError."""
    spec = spec.strip()
    if not spec:
        return None
    host, sep, port_text = spec.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{OPTION}: expected HOST:PORT, got {spec!r}")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{OPTION}: bad port in {spec!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"{OPTION}: port out of range in {spec!r}")
    return host, port


class ResolveAll:
    """Rewrites the destination of every server connection.

    The flow keeps its Host header, SNI and URL (https://metrics-a.wbx2.com/…);
    only the TCP destination changes, in `server_connect`, before any name is
    resolved. So the simulator's traffic looks exactly like the real app's while
    it reaches the local vendor server, with no network.
    """

    def __init__(self) -> None:
        self.upstream: tuple[str, int] | None = None

    def load(self, loader) -> None:
        loader.add_option(
            OPTION, str, "",
            "Send every upstream connection to this HOST:PORT (phonehome simulator). "
            "Host header, SNI and URL are kept.",
        )

    def configure(self, updated: set[str]) -> None:
        if OPTION in updated:
            try:
                self.upstream = parse_upstream(getattr(ctx.options, OPTION))
            except ValueError as e:
                raise exceptions.OptionsError(str(e)) from e

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if self.upstream is None:
            return
        # Only the TCP destination changes; mitmproxy takes the upstream SNI
        # from the client's ClientHello, so the original name is kept for TLS.
        data.server.address = self.upstream


addons = [ResolveAll()]
