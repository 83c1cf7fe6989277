"""``photokit`` click group: global options, one module per command, error policy.

Error policy (SPEC): a `PhotokitError` prints one line on stderr naming the file and the
cause and exits 1; any other exception does the same with ``internal error``; the
traceback is shown only with ``-v``. Usage errors are click's own (exit 2).
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import traceback
import warnings
from typing import NoReturn

import click

from .._version import __version__
from ..errors import PhotokitError
from ..io.memory import keep_freed_memory

# command name -> module in photokit.cli (imported on use, so `photokit check` stays fast)
COMMANDS = {
    "check": "check",
    "measure": "measure",
    "align": "align",
    "compare": "compare",
    "series": "series",
    "batch": "batch",
    "synth": "synth",
    "demo": "demo",
    "face": "face",
}


class PhotokitGroup(click.Group):
    """Lazily loads commands and turns errors into one line and an exit code."""

    def list_commands(self, ctx):
        return [c for c in COMMANDS if self._module(c) is not None]

    def get_command(self, ctx, name):
        mod = self._module(name)
        return None if mod is None else mod.command

    @staticmethod
    def _module(name):
        if name not in COMMANDS:
            return None
        try:
            return importlib.import_module(f"photokit.cli.{COMMANDS[name]}")
        except ModuleNotFoundError as exc:
            if exc.name == f"photokit.cli.{COMMANDS[name]}":
                return None
            raise

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except PhotokitError as exc:
            _fail(ctx, str(exc))
        except KeyboardInterrupt:
            click.echo("photokit: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug: still one line unless -v
            _fail(ctx, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0])


def _fail(ctx, line: str) -> None:
    if (ctx.obj or {}).get("verbose"):
        traceback.print_exc()
    click.echo(f"photokit: {line}", err=True)
    sys.exit(1)


@click.group(cls=PhotokitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="photokit")
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs and tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.pass_context
def cli(ctx, verbose, quiet):
    """Measure skin change from ordinary before/after photographs."""
    ctx.ensure_object(dict)
    ctx.obj.update(verbose=verbose, quiet=quiet)
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="photokit: %(message)s", stream=sys.stderr)
    if not verbose:
        warnings.simplefilter("ignore" if quiet else "default")
        warnings.formatwarning = lambda m, c, f, l, line=None: f"photokit: warning: {m}\n"


def main(argv: list[str] | None = None) -> NoReturn:
    """The ``photokit`` command (console script and ``python -m photokit``): `cli` in a
    process of its own, which first keeps the memory a photo frees for the next one
    (`photokit.io.memory.keep_freed_memory`) and ends on SIGTERM as on Ctrl-C: the
    default action killed the process where it stood, and a DICOM file being written was
    left half-written beside the others (QA); interrupted, every output's temporary file
    is removed (`photokit.io.atomic`) and the exit code is 130.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Notes
    -----
    Exits with the command's code (`click.Command.main` in standalone mode).
    """
    keep_freed_memory()
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupted)
    cli.main(args=argv, prog_name="photokit")


def _interrupted(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)   # a second one must not cut the cleanup short
    raise KeyboardInterrupt
