"""Synthesize the ``local`` stage's templates into a directory (local mode's source of truth).

Run as a script (``python tools/synth_local.py OUTDIR``) by ``atlas_codex_local.deploy``:
no bundling (local mode runs the handlers in-process), no cdk-nag (``make synth`` and the
tests check every stage, the local one included).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]


def main(outdir: str) -> None:
    import json

    import aws_cdk as cdk

    import stacks.stages as stages

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context.update({"stage": "local", "aws:cdk:bundling-stacks": []})
    app = cdk.App(context=context, outdir=outdir)
    stages.build_app(app, checks=False)
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1])
