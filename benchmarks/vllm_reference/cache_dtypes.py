"""vLLM's --kv-cache-dtype choices release by release: the CacheDType Literal of each unpacked source tree (vllm/config.py
before 0.11, vllm/config/cache.py after), frozen as tests/data/vllm_cache_dtypes.json for
tests/test_vllm_cache_dtypes.py. Reads sources only (no vLLM import).

    python benchmarks/vllm_reference/cache_dtypes.py SRC_ROOT [SRC_ROOT ...] > tests/data/vllm_cache_dtypes.json

Each SRC_ROOT holds one folder a release (SRC_ROOT/0.32.0/vllm/...); session 50 ran it on /tmp/s42/src,
/tmp/s44/src and /tmp/s49v32/src (0.8.5-0.32.0, unpacked wheels); session 52 added 0.33.0 and 0.34.0 from
their source releases (/tmp/s52/sd/vllm-X/vllm, the same choices() on each)."""

import json
import re
import sys
from pathlib import Path

LITERAL = re.compile(r"CacheDType\s*=\s*Literal\[(.*?)\]", re.S)


def choices(release: Path):
    for name in ("vllm/config/cache.py", "vllm/config.py", "vllm/config/__init__.py"):
        path = release / name
        if path.is_file():
            found = LITERAL.search(path.read_text())
            if found:
                return re.findall(r'"([^"]+)"', found.group(1)), name
    return None, None


def main(roots):
    out = {}
    for root in roots:
        for release in sorted(Path(root).iterdir()):
            values, source = choices(release)
            if values and release.name not in out:
                out[release.name] = {"choices": values, "source": source}
    key = lambda v: tuple(int(x) for x in re.findall(r"\d+", v)[:3])  # noqa: E731
    json.dump({"script": "benchmarks/vllm_reference/cache_dtypes.py", "releases": dict(sorted(out.items(),
              key=lambda kv: key(kv[0])))}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
