"""Print the locked runtime closure (what ships to Lambda) from the full constraints file;
with ``--render``, the render function's (its asset carries nothing else).

The runtime dependencies are those of ``[project].dependencies`` and everything they
require, transitively, as installed in the current environment; boto3 and botocore are
left out on purpose (the Lambda runtime provides them).
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

PROVIDED_BY_RUNTIME = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[str]) -> set[str]:
    """Every distribution ``roots`` need, extras included (``lxml[html_clean]`` brings
    ``lxml-html-clean``, which jusText imports)."""
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = canonical(req.name)
        if name in PROVIDED_BY_RUNTIME:
            continue
        names.add(name)
        for extra in ("", *sorted(req.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for dep in metadata.requires(req.name) or []:
                child = Requirement(dep)
                if child.marker is None or child.marker.evaluate({"extra": extra}):
                    todo.append(child)
    return names


def main(constraints: str, *, render: bool = False) -> None:
    """``render``: the render function's closure (``[tool.atlas-codex]
    render-dependencies``) instead of the runtime's."""
    pyproject = tomllib.loads(Path("pyproject.toml").read_text())
    roots = (
        pyproject["tool"]["atlas-codex"]["render-dependencies"]
        if render
        else pyproject["project"]["dependencies"]
    )
    wanted = closure(roots)
    for line in Path(constraints).read_text().splitlines():
        name = line.split("==", 1)[0]
        if canonical(name) in wanted:
            print(line)


if __name__ == "__main__":
    main(sys.argv[1], render="--render" in sys.argv[2:])
