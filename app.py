#!/usr/bin/env python3
"""CDK entry point: one set of stacks per stage (``-c stage=dev`` for one)."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

sys.path.insert(0, str(Path(__file__).parent / "lambdas"))

from atlas_codex_stage.settings import SettingsError
from stacks import guards
from stacks.packaging import skip_bundling_if_asked
from stacks.stages import build_app


def main() -> None:
    app = cdk.App()
    skip_bundling_if_asked(app)
    try:
        build_app(app)
    except SettingsError as exc:
        print(f"atlas-codex: {exc}", file=sys.stderr)
        sys.exit(1)
    assembly = app.synth()
    # Our own guards on the templates just written (cdk-nag ran inside synth()).
    if guards.main([assembly.directory], quiet=True) != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
