"""The exceptions of whichever click typer runs on, for run.main and a deployments file's `serve:` command."""


def click_errors() -> tuple:
    """(usage errors, Abort, Exit) of whichever click typer runs on: vendored since typer 0.26."""
    try:
        from typer._click.exceptions import ClickException, UsageError
        from typer.exceptions import Abort, Exit
    except ImportError:
        from click.exceptions import Abort, ClickException, Exit, UsageError
    return (UsageError, ClickException), Abort, Exit
