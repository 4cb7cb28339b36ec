"""A whole meeting-app session: `simulate()` plays the timeline through a proxy.

It writes the identity the app leaks and the ground truth of what it planted.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from . import payloads as p
from .client import Sender, SimulationError
from .ground_truth import GROUND_TRUTH_SCHEMA, ground_truth, write_json
from .identity import make_identity, write_identity
from .leaks import ALL_LEAKS, parse_leaks
from .steps import Run
from .timeline import TIMELINE, Step, extra_steps, play_timeline

__all__ = [
    "SimulationResult",
    "SimulationError",
    "GROUND_TRUTH_SCHEMA",
    "simulate",
]


@dataclass(frozen=True, slots=True)
class SimulationResult:
    out_dir: Path
    identity_path: Path
    ground_truth_path: Path
    requests: int
    requests_by_host: Mapping[str, int]
    statuses: Mapping[int, int]
    mute_window: tuple[float, float] | None
    """Wall-clock (epoch) times the client.muted and client.unmuted events were sent."""
    started: float
    finished: float
    seed: int
    speed: float
    leaks: tuple[str, ...]


def simulate(proxy_url: str, ca_cert: Path, *, seed: int = 1, speed: float = 100.0,
             leaks: Collection[str] = ALL_LEAKS, out_dir: Path,
             spell: Callable[[str], str] = str,
             extra_events: Mapping[str, Sequence[str]] | None = None) -> SimulationResult:
    """Plays the whole session through `proxy_url`; writes identity.yaml and ground_truth.json.

    `spell` renames the app's event names (spelling.respeller); `extra_events`
    adds, per trigger, a batch of more events in that trigger's phase. Both
    make sessions no pack was tuned to. Raises ValueError for bad arguments
    and SimulationError when the proxy or the vendor stand-in cannot be reached.
    """
    if not 0 < speed < float("inf"):
        raise ValueError(f"speed must be a positive number, got {speed}")
    chosen = parse_leaks(leaks)
    timeline = TIMELINE
    if extra_events:
        timeline = tuple(sorted(TIMELINE + extra_steps(extra_events), key=lambda step: step.at))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    identity = make_identity(seed)
    env = p.make_env(seed, identity, chosen)
    identity_path = write_identity(identity, out_dir / "identity.yaml")
    started = time.time()
    with Sender(proxy_url, Path(ca_cert), env.session_id) as sender:
        run = Run(env, sender, rng=random.Random(f"phonehome-sim-run:{seed}"), spell=spell)
        run.marks["start"] = started

        def play(step: Step) -> None:
            run.phase = step.phase
            step.run(run)

        play_timeline(timeline, speed, play)
    finished = time.time()
    truth = ground_truth(run, chosen, speed, started, finished)
    truth_path = write_json(truth, out_dir / "ground_truth.json")
    mute = truth["mute_window"]
    return SimulationResult(
        out_dir=out_dir,
        identity_path=identity_path,
        ground_truth_path=truth_path,
        requests=len(run.sent),
        requests_by_host=MappingProxyType(dict(sender.by_host)),
        statuses=MappingProxyType(dict(sender.statuses)),
        mute_window=(mute["start"], mute["end"]) if mute else None,
        started=started,
        finished=finished,
        seed=seed,
        speed=speed,
        leaks=tuple(name for name in ALL_LEAKS if name in chosen),
    )
