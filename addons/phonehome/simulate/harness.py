"""The simulated session through a real mitmdump with the phonehome addon.

Used by `phonehome demo` and by examples/make_sample.py: the vendor stand-in
and mitmdump on 127.0.0.1, the simulator through them, everything stopped
before returning (also on Ctrl-C).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..proxy_process import MitmdumpProcess, addon_script
from . import RESOLVER_ADDON_PATH, SimulationResult, simulate
from .identity import make_identity, write_identity
from .vendor_server import VendorServer

__all__ = ["HarnessRun", "HarnessError", "run_through_proxy"]


class HarnessError(RuntimeError):
    """mitmdump failed; the message ends with the tail of its log."""


@dataclass(frozen=True)
class HarnessRun:
    simulation: SimulationResult
    capture: Path
    vendor_record: Path
    proxy_log: str


def run_through_proxy(
    workdir: Path,
    report_dir: Path,
    *,
    seed: int = 1,
    speed: float = 100.0,
    leaks: Collection[str],
    options: Mapping[str, str] | None = None,
    on_proxy_ready: Callable[[str], None] | None = None,
    spell: Callable[[str], str] = str,
    extra_events: Mapping[str, Sequence[str]] | None = None,
) -> HarnessRun:
    """Run one simulated session; the addon writes its reports into `report_dir`."""
    identity_path = write_identity(make_identity(seed), workdir / "identity.yaml")
    capture = workdir / "session.mitm"
    with VendorServer(workdir / "vendor-record.jsonl") as vendor:
        proxy = MitmdumpProcess(
            workdir / "mitmproxy",
            scripts=[addon_script(workdir), RESOLVER_ADDON_PATH],
            options={
                "phonehome_report_dir": str(report_dir),
                "phonehome_identity": str(identity_path),
                "phonehome_time_scale": str(speed),
                "phonehome_quiet": "true",
                "phonehome_sim_upstream": vendor.address,
                "ssl_insecure": "true",
                **dict(options or {}),
            },
            extra_args=["-w", str(capture), "--flow-detail", "0"],
        )
        with proxy:
            if on_proxy_ready is not None:
                on_proxy_ready(proxy.url)
            try:
                simulation = simulate(proxy.url, proxy.ca_cert, seed=seed, speed=speed,
                                      leaks=leaks, out_dir=workdir, spell=spell,
                                      extra_events=extra_events)
            except Exception as e:
                raise HarnessError(f"{e}\n--- mitmdump log ---\n{proxy.output()[-2000:]}") from e
        code = proxy.process.returncode if proxy.process is not None else None
        if code not in (0, None):
            raise HarnessError(f"mitmdump exited with {code}:\n{proxy.output()[-2000:]}")
    return HarnessRun(simulation, capture, workdir / "vendor-record.jsonl", proxy.output())
