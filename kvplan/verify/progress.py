"""Progress of a long run on stderr: a spinner while a step runs, one timed line when it ends."""

from __future__ import annotations

import time


class Progress:
    """Progress on stderr (rich): a spinner while a step runs on a terminal, one line when it ends."""

    def __init__(self, console=None):
        if console is None:
            from rich.console import Console

            console = Console(stderr=True, highlight=False)
        self.console = console
        self.started = time.perf_counter()

    def step(self, text: str):
        return _Step(self, text)

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{time.perf_counter() - self.started:6.1f}s[/dim] {text}")


class _Step:
    def __init__(self, progress: Progress, text: str):
        self.progress, self.text = progress, text

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.status = self.progress.console.status(self.text + " ...")
        self.status.__enter__()
        return self

    def __exit__(self, kind, exc, tb):
        self.status.__exit__(kind, exc, tb)
        if kind is None:
            self.progress.note(f"{self.text}: {time.perf_counter() - self.t0:.1f} s")
        return False
