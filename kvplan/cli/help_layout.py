"""--help as typer lays it out, with one change: a word wider than its column is folded onto the next line instead
of cut with '…'. typer's option tables (and the rich Columns each option's help sits in) ellipsise such a word, and
vLLM's long flag names are such words at 80 columns (`--prefill-context-parallel-size`, `--dcp-kv-cache-interleave-
size` even at 120), so the help could not spell the flag it documents. Patched only while help is being laid out,
so no other rich output, and no start-up, pays for it."""

from contextlib import contextmanager


def fold_long_words(command) -> None:
    """Have `command`'s --help, and each subcommand's, fold a word wider than its column."""
    lay_out = command.format_help

    def format_help(ctx, formatter):
        with _folding_tables():
            return lay_out(ctx, formatter)

    command.format_help = format_help
    for sub in getattr(command, "commands", {}).values():
        fold_long_words(sub)


@contextmanager
def _folding_tables():
    """typer's help tables and rich's Columns (its per-option help cells) built as tables whose every column folds."""
    import rich.columns
    from rich.table import Table
    from typer import rich_utils

    class FoldingTable(Table):
        def __rich_console__(self, console, options):
            for column in self.columns:
                column.overflow = "fold"
            yield from super().__rich_console__(console, options)

    saved = rich_utils.Table, rich.columns.Table
    rich_utils.Table = rich.columns.Table = FoldingTable
    try:
        yield
    finally:
        rich_utils.Table, rich.columns.Table = saved
