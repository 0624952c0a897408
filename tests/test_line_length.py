"""The project's style keeps lines within 120 characters (design.md's style; the helpers' rules): every Python file
under kvplan/ and tests/ is checked, counting characters (not UTF-8 bytes), and offenders are named as file:line."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 120


def long_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [f"{path.relative_to(ROOT)}:{number} ({len(line)} chars)"
            for number, line in enumerate(text.splitlines(), 1) if len(line) > LIMIT]


def test_no_python_line_over_120_characters():
    files = sorted(p for top in ("kvplan", "tests") for p in (ROOT / top).rglob("*.py"))
    assert len(files) > 100  # the walk found the sources (not an empty directory)
    offenders = [where for path in files for where in long_lines(path)]
    assert not offenders, f"lines over {LIMIT} characters:\n" + "\n".join(offenders)
