"""`python -m kvplan`, and the `kvplan` console script's target: the Ctrl-C handler is installed here, before
typer, rich or the Hub client load, so that an interrupt at any moment prints one line and exits 130."""

import os
import signal


def _interrupted(signum, frame) -> None:
    try:
        os.write(2, b"kvplan: interrupted.\n")
    finally:
        os._exit(130)


def entry() -> None:
    signal.signal(signal.SIGINT, _interrupted)
    from kvplan.cli import finish, main

    finish(main())


if __name__ == "__main__":
    entry()
