"""Regenerate the golden outputs: `python tests/golden/regen.py` (from the repository root).

The goldens pin what kvplan prints for every bundled model (estimate), the catalogs (models, gpus) and a few
checks. A commit that changes one says which rule it fixed and why; test_golden.py compares in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

from golden_cases import cases  # noqa: E402


def main() -> None:
    for name, args in cases():
        out = subprocess.run([sys.executable, "-m", "kvplan", *args], capture_output=True, text=True, cwd=ROOT,
                             env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "100"})
        if out.returncode not in (0, 1):
            raise SystemExit(f"{name}: exit {out.returncode}: {out.stderr}")
        data = json.loads(out.stdout)
        (HERE / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(name)


if __name__ == "__main__":
    main()
