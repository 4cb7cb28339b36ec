"""One audit worker's per-flow CPU: an Auditor built and frozen as a worker's, then each
flow of a .mitm capture through `audit_job`, timed in process CPU time, with a digest of
the records (equal across the checkouts compared; PYTHONPATH picks the checkout).

    PYTHONPATH=CHECKOUT/addons python bench/bench_worker.py CAPTURE [FLOWS] [--identity FILE]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import time
from pathlib import Path

from phonehome.audit.parallel import Job, audit_job
from phonehome.audit.pipeline import Auditor, AuditSettings
from phonehome.capture.files import Frame, read_capture_frames

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("flows", type=int, nargs="?", help="only the first FLOWS flows")
    parser.add_argument("--identity", type=Path, default=ROOT / "examples" / "identity.yaml")
    args = parser.parse_args()
    auditor = Auditor(AuditSettings(identity_path=args.identity, fingerprint_key=bytes(32)))
    gc.freeze()  # as a worker does
    jobs = [Job("bench", position, frame=item)
            for item, position in read_capture_frames(args.capture) if isinstance(item, Frame)]
    jobs = jobs[:args.flows] if args.flows else jobs
    digest = hashlib.sha256()
    start = time.process_time()
    for job in jobs:
        for audited in audit_job(auditor, job).records:
            digest.update(audited.record.text.encode("utf-8", "surrogatepass"))
    spent = time.process_time() - start
    print(f"{spent:.3f} s CPU, {spent / len(jobs) * 1e6:.0f} µs a flow, {len(jobs)} flows, "
          f"records digest {digest.hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
