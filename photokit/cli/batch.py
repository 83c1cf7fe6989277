"""``photokit batch SOURCE --db DB``: score a photo archive into an SQLite results store."""

from __future__ import annotations

import importlib
import os
import sys

import click

from .options import fhir_option, metrics_option, mm_per_px_option, patient_name_option, subject_option


def _export_target(value: str | None) -> str | None:
    """``--export``'s FILE, whose extension chooses the format: any other is a usage error
    (exit 2), found before any photo is scored."""
    from ..batch.store import EXPORT_SUFFIXES

    if value is not None and os.path.splitext(value)[1].lower() not in EXPORT_SUFFIXES:
        raise click.BadParameter(f"{value!r}: the format is chosen by the extension, one of "
                                 f"{', '.join(EXPORT_SUFFIXES)}")
    return value


def _load_scorer(spec: str):
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise click.BadParameter("expected MODULE:FUNCTION", param_hint="--scorer")
    try:
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise click.BadParameter(f"cannot import {spec} ({exc})", param_hint="--scorer") from None
    return obj


@click.command("batch")
@click.argument("source", type=click.Path(exists=True))
@click.option("--db", required=True, type=click.Path(dir_okay=False),
              help="SQLite results database (created when missing; re-runs resume).")
@click.option("--export", "export", type=click.Path(dir_okay=False), default=None,
              callback=lambda ctx, param, value: _export_target(value),
              help="Also write the scores table to FILE (.csv or .parquet).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes (default: all cores; 0 = in this process). With "
                   "--engine dask and no --scheduler: size of the local cluster.")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Local processes, or Dask distributed (pip install 'photokit[dask]').")
@click.option("--scheduler", default=None, metavar="ADDR",
              help="Dask scheduler address, e.g. tcp://host:8786 (default: a local cluster).")
@mm_per_px_option
@metrics_option
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="Give up on a photo after this long (local engine): "
              "it becomes a failed row and the run goes on.")
@click.option("--scorer", default=None, metavar="MODULE:FUNCTION",
              help="Custom per-photo scoring function f(path, **params) -> dict "
                   "(default: photokit's measure).")
@click.option("--prune", is_flag=True,
              help="After the run, remove the rows of photos no longer in the SOURCE folder "
                   "(deleted or moved since they were scored); by default they are kept and counted.")
@fhir_option
@subject_option
@patient_name_option
@click.pass_context
def command(ctx, source, db, export, workers, engine, scheduler, mm_per_px, metric_names, timeout, scorer,
            prune, fhir_path, subject, patient_name):
    """Score every photo of SOURCE (a folder, recursive, or a CSV manifest) into DB.

    One row per photo in the DB's `scores` table: path, sha256, status, error and one
    column per metric. A broken photo becomes a `failed` row with its reason and the run
    goes on. Re-running skips photos already scored with the same content, photokit
    version and parameters, so an interrupted run resumes where it stopped.

    Exit codes: 0 all scored, 3 finished but some photos failed, 1 the run could not
    start (bad source, database or export target).
    """
    from ..batch.archive import score_archive

    if scheduler is not None and engine != "dask":
        raise click.UsageError("--scheduler needs --engine dask")
    quiet = bool((ctx.find_root().obj or {}).get("quiet"))
    if fhir_path:
        from ..exports.fhir import require

        require()
    score_fn = _load_scorer(scorer) if scorer else None
    summary = score_archive(source, db, export=export, workers=workers, engine=engine,
                            scheduler=scheduler, progress=False if quiet else None,
                            score_fn=score_fn, mm_per_px=mm_per_px, timeout=timeout,
                            metrics=metric_names, prune=prune)
    if not quiet:
        rate = summary.photos_per_second
        rate_txt = f" ({rate:.2f} photos/s)" if summary.n_scored + summary.n_failed else ""
        click.echo(f"photokit batch: {summary.summary_line()}{rate_txt}", err=True)
        if summary.export:
            click.echo(f"photokit batch: exported {summary.export}", err=True)
    if fhir_path:
        from ..exports.fhir import batch_bundle

        batch_bundle(db, source=source, subject=subject, patient_name=patient_name).write(fhir_path)
        if not quiet:
            click.echo(f"photokit batch: FHIR bundle written to {fhir_path}", err=True)
    if summary.n_failed:
        # failures are reported even under -q: they decide the exit code
        for path, reason in summary.failures:
            click.echo(f"photokit batch: failed: {path}: {reason}", err=True)
        more = summary.n_failed - len(summary.failures)
        if more > 0:
            click.echo(f"photokit batch: ... and {more} more (SELECT path, error FROM scores "
                       f"WHERE status = 'failed')", err=True)
        sys.exit(3)

