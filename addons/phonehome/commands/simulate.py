"""`phonehome simulate --proxy URL --ca PATH`: play a Webex-like session through a proxy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..exitcodes import ExitCode
from ..simulate import ALL_LEAKS, SimulationError, parse_leaks, simulate

__all__ = ["register", "handler", "check_proxy_url"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run a simulated meeting-app session through a proxy (synthetic data only)",
        description="Drives a whole Webex-like session (launch, sign-in, meeting, share, "
                    "chat, error report, leave, shutdown) over HTTPS through --proxy, "
                    "and writes identity.yaml and ground_truth.json.",
    )
    parser.add_argument("--proxy", required=True, metavar="URL",
                        help="the intercepting proxy, e.g. http://127.0.0.1:8080")
    parser.add_argument("--ca", required=True, type=Path, metavar="PATH",
                        help="the proxy's CA certificate (mitmproxy-ca-cert.pem)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the synthetic identity")
    parser.add_argument("--speed", type=float, default=100.0,
                        help="time compression; the ~25 min session takes 1500/X s (default 100)")
    parser.add_argument("--leaks", default="all", metavar="a,b,…|all|none",
                        help=f"leaks to plant: {', '.join(ALL_LEAKS)}")
    parser.add_argument("-o", "--output", type=Path, default=Path("simulation"), metavar="DIR")
    parser.set_defaults(func=handler)


def check_proxy_url(url: str) -> str:
    """http(s)://host:port, or ValueError."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"bad --proxy {url!r}: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise ValueError(f"bad --proxy {url!r}: expected http://HOST:PORT")
    return url


def handler(args: argparse.Namespace) -> int:
    try:
        proxy = check_proxy_url(args.proxy)
        if not args.ca.is_file():
            raise ValueError(f"--ca {args.ca}: no such file")
        if not 0 < args.speed < float("inf"):
            raise ValueError(f"--speed must be a positive number, got {args.speed}")
        leaks = parse_leaks(args.leaks)
    except ValueError as e:
        print(f"phonehome simulate: {e}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        result = simulate(proxy, args.ca, seed=args.seed, speed=args.speed, leaks=leaks,
                          out_dir=args.output)
    except SimulationError as e:
        print(f"phonehome simulate: {e}", file=sys.stderr)
        return ExitCode.USAGE
    except OSError as e:
        print(f"phonehome simulate: cannot write {args.output}: {e}", file=sys.stderr)
        return ExitCode.USAGE
    planted = ", ".join(result.leaks) or "none"
    print(f"simulated {result.requests} requests in {result.finished - result.started:.1f}s "
          f"(leaks planted: {planted})")
    print(f"identity: {result.identity_path}")
    print(f"ground truth: {result.ground_truth_path}")
    return ExitCode.OK
