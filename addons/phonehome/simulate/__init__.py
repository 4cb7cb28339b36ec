"""A Webex-like meeting-app simulator and its local HTTPS vendor stand-in.

    from phonehome.simulate import simulate, VendorServer, RESOLVER_ADDON_PATH

`vendor_server` is imported lazily: `python -m phonehome.simulate.vendor_server` runs once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client import SimulationError
from .leaks import ALL_LEAKS, parse_leaks
from .scenario import SimulationResult, simulate

if TYPE_CHECKING:
    from .vendor_server import VendorServer

__all__ = [
    "ALL_LEAKS",
    "RESOLVER_ADDON_PATH",
    "SimulationError",
    "SimulationResult",
    "VendorServer",
    "parse_leaks",
    "simulate",
]

RESOLVER_ADDON_PATH: Path = Path(__file__).resolve().parent / "resolver_addon.py"
"""Load with `mitmdump -s RESOLVER_ADDON_PATH --set phonehome_sim_upstream=HOST:PORT`."""


def __getattr__(name: str) -> Any:
    if name == "VendorServer":
        from .vendor_server import VendorServer

        return VendorServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
