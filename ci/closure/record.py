#!/usr/bin/env python3
"""Record the facts the closure checks read, from snapshots, for CI (which has none).

    ci/closure/record.py SNAPSHOT_DIR

SNAPSHOT_DIR holds openembedded-core/ and buildroot/ (and bitbake/), the
commits docs/layer-checks.md lists. Writes tests/integrations/data/closure/
oe-core.json (python3 packages: lib-relative file patterns and rdepends) and
buildroot.json (python3.mk's module -> option map; per defconfig the
resolved options the checks read, the kernel and BusyBox options, show-info's
package list; a sha256 of the external tree's inputs). Nothing else of the
snapshots is kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import closure_facts


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    snap = Path(argv[0]).resolve()
    for sub in ("openembedded-core", "buildroot"):
        if not (snap / sub).is_dir():
            print(f"record.py: {snap / sub}: not a directory", file=sys.stderr)
            return 2
    closure_facts.RECORD.mkdir(parents=True, exist_ok=True)
    facts = {
        "oe-core.json": closure_facts.live_oe_core(snap),
        "buildroot.json": closure_facts.live_buildroot(snap),
    }
    for name, data in facts.items():
        path = closure_facts.RECORD / name
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(closure_facts.REPO)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
