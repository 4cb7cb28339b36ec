"""When each step is sent: about 25 simulated minutes that `speed` divides.

Order and relative intervals stay the same at any speed (`play_timeline`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from . import steps as s
from .steps import Run

__all__ = [
    "Step",
    "TIMELINE",
    "SESSION_SECONDS",
    "MUTE_START",
    "MUTE_END",
    "extra_steps",
    "play_timeline",
]

JOIN_AT, LEAVE_AT = 300.0, 1230.0
MUTE_START, MUTE_END = 470.0, 700.0
SHARE_START, SHARE_END = 760.0, 900.0
SESSION_SECONDS = 1500.0


@dataclass(frozen=True, slots=True)
class Step:
    at: float
    """Simulated seconds from launch."""
    phase: str
    run: Callable[[Run], None]


_EXTRA_AT: Mapping[str, float] = MappingProxyType({
    "setup": 0.5, "sign_in": 6.0, "app_start": 12.5, "periodic": 90.0,
    "meeting_create": 280.5, "meeting_join": 300.5, "in_meeting": 400.0,
    "screen_share": 800.0, "collaboration": 950.5, "error": 1000.5,
    "meeting_leave": 1230.5, "shutdown": 1500.5,
})
"""When a batch of extra events for each trigger is sent (simulated seconds)."""


def _extra(names: Sequence[str]) -> Callable[[Run], None]:
    def step(run: Run) -> None:
        run.metrics([run.ca(name) for name in names])
    return step


def extra_steps(extra_events: Mapping[str, Sequence[str]]) -> tuple[Step, ...]:
    """One step per trigger that sends `extra_events[trigger]` in one batch, in its phase."""
    steps = []
    for trigger, names in extra_events.items():
        if trigger not in _EXTRA_AT:
            raise ValueError(f"no phase for extra events with trigger {trigger!r}")
        if names:
            steps.append(Step(_EXTRA_AT[trigger], trigger, _extra(tuple(names))))
    return tuple(steps)


# The session, in simulated seconds:
# 0 s     setup       first launch, device and meetings registration, region lookup
# 5 s     sign_in     pre-login events, U2C catalog, identity broker, alias, login.end
# 12 s    app_start   startup.end, third-party analytics
# 60 s    periodic    heartbeats every 60 s
# 280 s   meeting_create, 300 s meeting_join (locus join)
# 306 s   in_meeting  rtcMetrics every 30 s, MQE every 60 s, mute 470-700 s
# 760 s   screen_share until 900 s; 950 s chat; 1000 s error report
# 1230 s  meeting_leave with the log upload
# 1290 s  periodic    idle heartbeats
# 1500 s  shutdown    client.exit.app
def _timeline() -> tuple[Step, ...]:
    by_phase: tuple[tuple[str, tuple[tuple[float, Callable[[Run], None]], ...]], ...] = (
        ("setup", ((0.0, s.first_launch), (1.0, s.wdm_register), (1.5, s.wdm_success),
                   (2.0, s.region), (2.5, s.meetings_registered))),
        ("sign_in", ((5.0, s.sign_in_start), (6.5, s.u2c_catalog), (7.0, s.identity_broker),
                     (8.0, s.alias), (8.5, s.user_catalog), (9.5, s.login_end))),
        ("app_start", ((12.0, s.app_start),)),
        ("periodic", tuple((t, s.heartbeat) for t in (60.0, 120.0, 180.0, 240.0))),
        ("meeting_create", ((280.0, s.meeting_create),)),
        ("meeting_join", ((JOIN_AT, s.mark("join", s.meeting_join)),)),
        ("in_meeting", ((MUTE_START, s.mute), (MUTE_END, s.unmute))),
        ("screen_share", ((SHARE_START, s.share_start), (SHARE_END, s.share_stop))),
        ("collaboration", ((950.0, s.chat),)),
        ("error", ((1000.0, s.error_report),)),
        ("meeting_leave", ((LEAVE_AT, s.leave),)),
        ("periodic", tuple((t, s.heartbeat) for t in (1290.0, 1350.0, 1410.0, 1470.0))),
        ("shutdown", ((SESSION_SECONDS, s.exit_app),)),
    )
    steps = [Step(at, phase, run) for phase, runs in by_phase for at, run in runs]
    rtc_times = [JOIN_AT + 6.0 + 30.0 * n for n in range(int((LEAVE_AT - JOIN_AT - 6) // 30))]
    steps += [Step(t, "in_meeting", s.rtc(n)) for n, t in enumerate(rtc_times, 1)]
    mqe_times = [JOIN_AT + 60.0 * n for n in range(1, int((LEAVE_AT - JOIN_AT) // 60) + 1)]
    steps += [Step(t, "in_meeting", s.mqe(n)) for n, t in enumerate(mqe_times, 1)]
    return tuple(sorted(steps, key=lambda step: step.at))  # sorted() is stable


TIMELINE: tuple[Step, ...] = _timeline()


def play_timeline(steps: Sequence[Step], speed: float, play: Callable[[Step], None], *,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> None:
    """Runs each step at `step.at / speed` seconds from now.

    A step that starts late (a slow request, a cold proxy) shifts every later
    step by the same amount, so the intervals between them keep their shape
    instead of the overdue steps firing in a burst.
    """
    origin = clock()
    for step in steps:
        delay = origin + step.at / speed - clock()
        if delay > 0:
            sleep(delay)
        else:
            origin -= delay
        play(step)
