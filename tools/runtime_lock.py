"""Print the locked runtime closure (what ships to Lambda) from the full constraints file.

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
    seen: set[str] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = canonical(req.name)
        if name in seen or name in PROVIDED_BY_RUNTIME:
            continue
        seen.add(name)
        for dep in metadata.requires(req.name) or []:
            child = Requirement(dep)
            if child.marker is None or child.marker.evaluate({"extra": ""}):
                todo.append(child)
    return seen


def main(constraints: str) -> None:
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    wanted = closure(project["dependencies"])
    for line in Path(constraints).read_text().splitlines():
        name = line.split("==", 1)[0]
        if canonical(name) in wanted:
            print(line)


if __name__ == "__main__":
    main(sys.argv[1])
