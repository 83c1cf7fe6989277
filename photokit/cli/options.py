"""Options shared by several commands, defined once."""

from __future__ import annotations

import json
import os

import click

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print exactly one JSON document on stdout.")
max_pixels_option = click.option("--max-pixels", type=click.IntRange(min=1), default=None,
                                 help="Refuse images above this many pixels (default 120 MP).")
roi_option = click.option("--roi", type=click.Path(exists=True, dir_okay=False), default=None,
                          help="Region to analyse: mask PNG (non-zero = inside) or polygon JSON.")
reference_roi_option = click.option(
    "--reference-roi", type=click.Path(exists=True, dir_okay=False), default=None,
    help="Untreated reference skin (mask PNG or polygon JSON) for colour normalisation.")
mm_per_px_option = click.option("--mm-per-px", type=click.FloatRange(min=0, min_open=True),
                                default=None, help="Physical scale of the photo, mm per pixel.")



def _metric_names(ctx, param, value):
    """``--metrics`` as registered metric names: comma-separated names or families."""
    from .. import metrics as registry
    from ..errors import PhotokitError

    try:
        return registry.chosen(value)
    except PhotokitError as exc:
        raise click.BadParameter(f"{exc.cause} (`photokit measure --help`)") from None


metrics_option = click.option(
    "--metrics", "metric_names", default=None, callback=_metric_names, metavar="NAMES",
    help="Only these metrics: comma-separated names or families (e.g. redness,pigment.ita_mean). "
         "Colour metrics alone decode a large JPEG at the size they need.")


def emit_json(doc) -> None:
    """Write one JSON document to stdout (NaN becomes null)."""
    click.echo(json.dumps(json_clean(doc), indent=2, allow_nan=False))


def json_clean(x):
    """`x` made JSON-safe: non-finite floats to None, numpy scalars to Python, keys to str."""
    if isinstance(x, float):
        return x if x == x and x not in (float("inf"), float("-inf")) else None
    if isinstance(x, dict):
        return {str(k): json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_clean(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return json_clean(x.item())
    return x


def refuse_overwriting(inputs, outputs: dict) -> None:
    """Stop before any work, with a usage error (exit 2), when an output would land on an
    input: photokit never writes over what it reads (SPEC).

    Paths are compared resolved (links, ``..``) and, where both exist, as files
    (`os.path.samefile`: hard links, another spelling of one file). `inputs` are paths
    (None skipped); `outputs` maps each option (``"--report"``) to its path or None.
    """
    ins = [os.fspath(p) for p in inputs if isinstance(p, (str, os.PathLike))]
    for option, out in outputs.items():
        if out is None:
            continue
        for src in ins:
            if _same_file(out, src):
                raise click.BadParameter(f"{out} is an input of this command ({src}): photokit never "
                                         "writes over its inputs; choose another path", param_hint=option)


def _same_file(a, b) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def info(msg: str) -> None:
    """A progress/status line on stderr, silenced by ``-q``."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().obj and ctx.find_root().obj.get("quiet"):
        return
    click.echo(msg, err=True)



# -- clinical exports and privacy (photokit.exports; docs/EXPORTS.md) -------------------
deidentify_option = click.option(
    "--deidentify", is_flag=True,
    help="No input names or folder paths in any output (photos become 'photo 1', ...), eyes "
         "and eyebrows under an opaque mask, no EXIF/XMP/GPS in written images.")
pdf_option = click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False), default=None,
                          help="Also print the report to an A4 PDF (needs headless Chromium).")
fhir_option = click.option("--fhir", "fhir_path", type=click.Path(dir_okay=False), default=None,
                           help="Write a FHIR R4 Bundle (JSON): one Observation per value, the "
                                "photo as Media (pip install 'photokit[fhir]').")
dicom_option = click.option("--dicom", "dicom_dir", type=click.Path(file_okay=False), default=None,
                            help="Write DICOM files (photos, aligned photos, PDF report) into this "
                                 "folder, one study (pip install 'photokit[dicom]').")
subject_option = click.option("--subject", default=None,
                              help="Subject (patient) identifier for FHIR and DICOM exports.")
patient_name_option = click.option("--patient-name", default=None,
                                   help="Patient name for DICOM/FHIR (never taken from file names).")


def clinical_options(command):
    """The clinical outputs of a report-writing command (compare, series): ``--pdf``,
    ``--fhir``, ``--dicom``, ``--deidentify``, ``--subject``, ``--patient-name``."""
    for option in (patient_name_option, subject_option, deidentify_option, dicom_option, fhir_option,
                   pdf_option):
        command = option(command)
    return command
