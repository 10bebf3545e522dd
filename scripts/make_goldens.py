"""Regenerates the golden digests (docs/determinism.md): ``python scripts/make_goldens.py``.

Computes jaxinit's canonical case set (``jaxinit/_src/tools/golden_cases.py``) on CPU and
writes ``jaxinit/_src/tools/goldens/cpu.json``, package data that ships in the wheel (``jaxinit
verify`` reads it); never edit that file by hand. ``--platform gpu`` (or ``tpu``) records the same
cases on an accelerator into ``jaxinit/_src/tools/goldens/<platform>.json``. Check a file with
``python -m jaxinit verify --goldens PATH``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="cpu", help="JAX platform to record on (cpu)")
    parser.add_argument(
        "--out", type=Path, help="default: jaxinit/_src/tools/goldens/<platform>.json"
    )
    args = parser.parse_args(argv)
    # Must be set before JAX initializes a backend.
    os.environ["JAX_PLATFORMS"] = args.platform

    sys.path.insert(0, str(ROOT))  # the checkout's jaxinit, even when not installed
    from jaxinit._src.tools import golden

    goldens = ROOT.joinpath(*golden.PACKAGE.split("."), golden.GOLDENS_DIR)
    out = args.out or goldens / f"{args.platform}.json"
    start = time.perf_counter()
    doc = golden.generate()
    golden.write(doc, out)
    meta = doc["meta"]
    print(
        f"wrote {meta['count']} cases to {out} ({meta['backend']}, {meta['device_kind']}, "
        f"jax {meta['jax']}) in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
