"""Regenerate the sample capture: `python examples/make_sample.py`.

Runs the meeting-app simulator (seed 7, every leak planted) through a real
mitmdump with the phonehome addon, then rewrites the saved flows' timestamps
from the 100×-compressed run back to the session's true 25-minute timeline,
so `phonehome audit examples/webex-session.mitm` sees real intervals. All
personal values are synthetic (Faker, seeded).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "addons"))

from mitmproxy import io  # noqa: E402

from phonehome.simulate.harness import run_through_proxy  # noqa: E402
from phonehome.simulate.leaks import ALL_LEAKS  # noqa: E402

SEED = 7
SPEED = 100.0


def _stretch(flow, origin: float) -> None:
    def scaled(t: float | None) -> float | None:
        return None if t is None else origin + (t - origin) * SPEED

    for part in (flow.request, flow.response):
        if part is not None:
            part.timestamp_start = scaled(part.timestamp_start)
            part.timestamp_end = scaled(part.timestamp_end)
    flow.timestamp_created = scaled(flow.timestamp_created)
    if flow.websocket is not None:
        for message in flow.websocket.messages:
            message.timestamp = scaled(message.timestamp)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="phonehome-sample-") as tmp:
        workdir = Path(tmp)
        run = run_through_proxy(workdir, workdir / "reports", seed=SEED, speed=SPEED,
                                leaks=ALL_LEAKS, options={"phonehome_formats": "json"})
        with run.capture.open("rb") as fo:
            flows = list(io.FlowReader(fo).stream())
        origin = min(f.request.timestamp_start for f in flows)
        with (HERE / "webex-session.mitm").open("wb") as out:
            writer = io.FlowWriter(out)
            for flow in flows:
                _stretch(flow, origin)
                writer.add(flow)
        shutil.copy(workdir / "identity.yaml", HERE / "identity.yaml")
        shutil.copy(workdir / "ground_truth.json", HERE / "ground_truth.json")
    print(f"wrote {HERE / 'webex-session.mitm'} ({len(flows)} flows), identity.yaml, "
          "ground_truth.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
