"""Clinical exports: A4 PDF reports, FHIR R4 bundles, DICOM studies; and their failures."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from photokit import load
from photokit.cli.main import cli
from photokit.errors import PhotokitError
from photokit.exports import pdf as pdfmod

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed")
VL = "1.2.840.10008.5.1.4.1.1.77.1.4"
PDF = "1.2.840.10008.5.1.4.1.1.104.1"


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """One compare run with every export (the slow part, shared by the tests below)."""
    pytest.importorskip("pydicom")
    pytest.importorskip("fhir.resources")
    out = tmp_path_factory.mktemp("compare")
    before, after = SAMPLES / "00_baseline.jpg", SAMPLES / "07_followup.jpg"
    args = ["compare", str(before), str(after), "--report", str(out / "r.html"), "--fhir",
            str(out / "f.json"), "--dicom", str(out / "dcm"), "--subject", "P-001", "--patient-name",
            "Test^Patient", "--json"]
    if CHROMIUM:
        args += ["--pdf", str(out / "r.pdf")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.stderr
    return out, json.loads(r.stdout), (before, after)


# -- PDF ----------------------------------------------------------------------------------

def test_print_css_is_injected_into_the_head():
    page = "<html><head><title>t</title></head><body><table><tr><td>1</td></tr></table></body></html>"
    out = pdfmod.printable(page)
    head = out[: out.index("</head>")]
    assert "@page" in head and "size: A4" in head and "break-inside: avoid" in head
    assert "table-header-group" in head and out.endswith("</body></html>")
    # folded parts are opened: paper cannot unfold them (the "further measures" of a
    # compare report, seven changes among them, were missing from its PDF: QA, 2026-12-08)
    folded = pdfmod.printable('<html><head></head><body><details class="more"><summary>s</summary>x'
                              '</details><DETAILS open><summary>t</summary></DETAILS></body></html>')
    assert '<details open class="more">' in folded and "<details open open" not in folded.lower()
    odd = pdfmod.printable('<html><head></head><body><details-x></details-x><details class="is-open">'
                           '<summary>s</summary></details></body></html>')
    assert "<details-x>" in odd and '<details open class="is-open">' in odd


@needs_chromium
def test_compare_pdf_holds_the_folded_measures(compared):
    """Every measure of the HTML table is in the PDF's text, folded ones too."""
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) not installed")
    out, doc, _ = compared
    text = subprocess.run(["pdftotext", str(out / "r.pdf"), "-"], capture_output=True, text=True).stdout
    assert "texture.ra" in (out / "r.html").read_text() and "texture.ra" in text


@needs_chromium
def test_compare_pdf_is_a4(compared):
    out, _, _ = compared
    data = (out / "r.pdf").read_bytes()
    assert data.startswith(b"%PDF")
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(out / "r.pdf")], capture_output=True, text=True).stdout
        assert "(A4)" in info
        assert int(next(ln.split()[-1] for ln in info.splitlines() if ln.startswith("Pages"))) >= 2


def test_pdf_without_chromium_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(pdfmod, "BROWSERS", ("no-such-browser-photokit",))
    monkeypatch.delenv("PHOTOKIT_CHROMIUM", raising=False)
    r = CliRunner().invoke(cli, ["compare", str(SAMPLES / "00_baseline.jpg"),
                                 str(SAMPLES / "07_followup.jpg"), "--pdf", str(tmp_path / "r.pdf"),
                                 "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "chromium" in lines[0].lower() and "install" in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written, and no analysis was run


def test_failed_print_writes_nothing(tmp_path, monkeypatch):
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\necho 'crashed' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PHOTOKIT_CHROMIUM", str(fake))
    with pytest.raises(PhotokitError, match="could not print.*exit 3: crashed"):
        pdfmod.write_pdf(tmp_path / "r.pdf", "<html><head></head><body>x</body></html>")
    assert not (tmp_path / "r.pdf").exists()


# -- FHIR ---------------------------------------------------------------------------------

def _resources(doc, kind):
    return [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == kind]


def test_compare_fhir_bundle_validates_and_carries_every_value(compared):
    from fhir.resources.R4B.bundle import Bundle

    out, result, _ = compared
    doc = json.loads((out / "f.json").read_text())
    Bundle.model_validate(doc)  # R4 (R4B models) validation of the written file
    assert doc["type"] == "collection"
    media = _resources(doc, "Media")
    obs = _resources(doc, "Observation")
    assert len(media) == 2 and all(m["content"]["contentType"] == "image/jpeg" for m in media)
    values = [o for o in obs if not o["code"]["coding"][0]["code"].startswith("delta.")]
    deltas = [o for o in obs if o["code"]["coding"][0]["code"].startswith("delta.")]
    n_before = sum(v is not None for v in result["before"]["metrics"].values())
    n_after = sum(v is not None for v in result["after"]["metrics"].values())
    assert len(values) == n_before + n_after
    assert len(deltas) == sum(v is not None for v in result["delta"].values())
    a = next(o for o in deltas if o["code"]["coding"][0]["code"] == "delta.redness.a_mean")
    assert a["valueQuantity"]["value"] == pytest.approx(result["delta"]["redness.a_mean"])
    comps = {c["code"]["coding"][0]["code"]: c for c in a["component"]}
    assert comps["noise-floor"]["valueQuantity"]["value"] == pytest.approx(
        result["noise_floor"]["redness.a_mean"])
    assert comps["significant"]["valueBoolean"] is result["significant"]["redness.a_mean"]
    assert len(a["derivedFrom"]) == 2
    sig = [o for o in deltas if o.get("interpretation")]
    assert {o["interpretation"][0]["coding"][0]["code"] for o in sig} <= {"U", "D"}
    assert len(sig) == sum(bool(v) for v in result["significant"].values())
    # units: UCUM where they exist, photokit's code system otherwise
    units = {o["valueQuantity"]["unit"]: o["valueQuantity"]["system"] for o in values}
    assert units["%"] == "http://unitsofmeasure.org"
    assert units["a*"] == "https://photokit.dev/fhir/CodeSystem/unit"
    # subject from --subject, on every resource, with the DICOM-style name as spoken
    assert all(r["subject"]["identifier"]["value"] == "P-001" for r in obs + media)
    assert {r["subject"]["display"] for r in obs + media} == {"Patient Test"}


def test_fhir_says_relative_units_and_unjudged_changes(compared):
    """The samples compared without a scale: a value defined in millimetres is exported
    in photokit's ``relative:<unit>`` code, never UCUM's (no system may read it as
    millimetres), and a change that is not judged says why in its note."""
    from photokit.metrics import registry

    out, result, _ = compared
    assert result["before"]["scale"]["source"] == "relative"
    obs = _resources(json.loads((out / "f.json").read_text()), "Observation")
    by_code = {o["code"]["coding"][0]["code"]: o for o in obs}
    scaled = [m.name for m in registry.registered() if m.needs_scale]
    seen = [by_code[n] for n in scaled if n in by_code]
    assert seen and all(o["valueQuantity"]["code"].startswith("relative:")
                        and o["valueQuantity"]["system"] != "http://unitsofmeasure.org" for o in seen)
    colour = by_code["redness.a_mean"]["valueQuantity"]
    assert not colour["code"].startswith("relative:")
    for name, why in result["not_judged"].items():
        d = by_code.get(f"delta.{name}")
        if d is not None:
            assert d["note"][0]["text"] == f"not judged: {why}"
            assert "significant" not in {c["code"]["coding"][0]["code"] for c in d.get("component", [])}
    assert any(f"delta.{n}" in by_code and "note" in by_code[f"delta.{n}"] for n in scaled)


def test_measure_fhir_subject_absent_and_capture_date(tmp_path):
    pytest.importorskip("fhir.resources")
    from PIL import Image

    src = np.asarray(Image.open(SAMPLES / "00_baseline.jpg"))
    exif = Image.Exif()
    exif[0x0132] = "2024:03:04 05:06:07"
    p = tmp_path / "a.jpg"
    Image.fromarray(src).save(p, quality=95, exif=exif.tobytes())
    r = CliRunner().invoke(cli, ["measure", str(p), "--fhir", str(tmp_path / "f.json")])
    assert r.exit_code == 0, r.stderr
    doc = json.loads((tmp_path / "f.json").read_text())
    obs = _resources(doc, "Observation")
    assert obs and all("subject" not in o for o in obs)
    assert {o["effectiveDateTime"] for o in obs} == {"2024-03-04"}  # naive EXIF time: the date
    # a name without an identifier is the reference's display (it was dropped: QA, 2026-12-08)
    from photokit.exports.fhir import subject_ref
    assert subject_ref(None, "Jane Doe") == {"display": "Jane Doe"}
    assert subject_ref(None, "Doe^Jane^^Dr") == {"display": "Dr Jane Doe"}
    assert subject_ref(None, None) is None
    assert subject_ref(None, "^^^") is None and "display" not in subject_ref("P", "^^")
    assert subject_ref(None, "Yamada^Tarou=山田^太郎=やまだ^たろう") == {"display": "Tarou Yamada"}


def test_fhir_without_the_extra_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fhir.resources.R4B.bundle", None)
    r = CliRunner().invoke(cli, ["measure", str(SAMPLES / "00_baseline.jpg"), "--fhir",
                                 str(tmp_path / "f.json")])
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "photokit[fhir]" in lines[0]
    assert not (tmp_path / "f.json").exists()


def test_batch_fhir_subject_from_manifest(tmp_path):
    pytest.importorskip("fhir.resources")
    for name in ("00_baseline.jpg", "07_followup.jpg"):
        shutil.copy(SAMPLES / name, tmp_path / name)
    with open(tmp_path / "m.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["photo", "subject"])
        w.writerow(["00_baseline.jpg", "S-7"])
        w.writerow(["07_followup.jpg", "S-8"])
    r = CliRunner().invoke(cli, ["batch", str(tmp_path / "m.csv"), "--db", str(tmp_path / "d.db"),
                                 "--workers", "0", "--fhir", str(tmp_path / "f.json")])
    assert r.exit_code == 0, r.stderr
    doc = json.loads((tmp_path / "f.json").read_text())
    media = _resources(doc, "Media")
    assert {m["content"]["title"]: m["subject"]["identifier"]["value"] for m in media} == {
        "00_baseline.jpg": "S-7", "07_followup.jpg": "S-8"}
    # the samples scored without a scale: their millimetre measures in relative units
    obs = {o["code"]["text"]: o["valueQuantity"] for o in _resources(doc, "Observation")}
    assert obs["texture.pore_density"]["code"].startswith("relative:")
    assert not obs["redness.a_mean"]["code"].startswith("relative:")


# -- DICOM --------------------------------------------------------------------------------

def test_compare_dicom_study(compared):
    import pydicom

    out, _, (before, after) = compared
    files = sorted((out / "dcm").iterdir())
    ds = {f.name: pydicom.dcmread(f) for f in files}
    assert {d.SOPClassUID for d in ds.values()} == ({VL, PDF} if CHROMIUM else {VL})
    assert len({d.StudyInstanceUID for d in ds.values()}) == 1
    assert {d.PatientID for d in ds.values()} == {"P-001"}
    assert {str(d.PatientName) for d in ds.values()} == {"Test^Patient"}
    assert len({d.SOPInstanceUID for d in ds.values()}) == len(files)
    b = ds["01_before.dcm"]
    assert b.file_meta.MediaStorageSOPClassUID == VL and b.Modality == "XC"
    np.testing.assert_array_equal(b.pixel_array, load(before).pixels)
    np.testing.assert_array_equal(ds["02_after.dcm"].pixel_array, load(after).pixels)
    al = ds["03_after_aligned.dcm"]
    assert al.pixel_array.shape == b.pixel_array.shape and "DERIVED" in al.ImageType
    assert al.SeriesInstanceUID != b.SeriesInstanceUID == ds["02_after.dcm"].SeriesInstanceUID
    # the General Image / Series Type 2C attributes dciodvfy asked for, present and empty
    # (QA, 2026-12-08); the aligned copy says how it was derived
    for d in (b, al):
        assert "PatientOrientation" in d and d.PatientOrientation == "" and "Laterality" in d
    assert "DerivationDescription" in al and "DerivationDescription" not in b
    if shutil.which("dciodvfy"):
        for name in ("01_before.dcm", "03_after_aligned.dcm"):
            check = subprocess.run(["dciodvfy", str(out / "dcm" / name)], capture_output=True, text=True)
            assert "Error" not in check.stdout + check.stderr, check.stderr
    if CHROMIUM:
        rep = ds["04_report.dcm"]
        assert rep.MIMETypeOfEncapsulatedDocument == "application/pdf"
        pdf = (out / "r.pdf").read_bytes()
        assert bytes(rep.EncapsulatedDocument)[: len(pdf)] == pdf


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk's dcmdump not installed")
def test_dcmdump_reads_every_file(compared):
    out, _, _ = compared
    for f in sorted((out / "dcm").iterdir()):
        r = subprocess.run(["dcmdump", "-q", str(f)], capture_output=True, text=True)
        assert r.returncode == 0 and "E:" not in r.stderr, (f.name, r.stderr)
        want = "EncapsulatedPDFStorage" if f.name.endswith("report.dcm") else "VLPhotographicImageStorage"
        assert f"={want}" in r.stdout


def test_dicom_without_the_extra_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydicom", None)
    r = CliRunner().invoke(cli, ["compare", str(SAMPLES / "00_baseline.jpg"),
                                 str(SAMPLES / "07_followup.jpg"), "--dicom", str(tmp_path / "d")])
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "photokit[dicom]" in lines[0]
    assert not (tmp_path / "d").exists()


def test_series_exports(tmp_path):
    """A three-photo series: one study, one DICOM series per visit, FHIR per visit, PDF."""
    pydicom = pytest.importorskip("pydicom")
    pytest.importorskip("fhir.resources")
    rows = [("00_baseline.jpg", "2026-01-05", "baseline"),
            ("01_s1_day0.jpg", "2026-01-05T10:40", "treatment"), ("07_followup.jpg", "2026-03-04", "visit")]
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["photo", "date", "kind", "subject"])
        for name, date, kind in rows:
            shutil.copy(SAMPLES / name, tmp_path / name)
            w.writerow([name, date, kind, "S-42"])
    out = tmp_path / "out"
    args = ["series", str(tmp_path / "manifest.csv"), "--fhir", str(out / "f.json"), "--dicom",
            str(out / "dcm")]
    if CHROMIUM:
        args += ["--pdf", str(out / "r.pdf")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.stderr
    ds = [pydicom.dcmread(f) for f in sorted((out / "dcm").iterdir())]
    assert len({d.StudyInstanceUID for d in ds}) == 1 and {d.PatientID for d in ds} == {"S-42"}
    photos = [d for d in ds if d.SOPClassUID == VL]
    assert len(photos) == 5  # 3 photos + 2 aligned
    assert len({d.SeriesInstanceUID for d in photos}) == 3  # one per visit
    np.testing.assert_array_equal(photos[0].pixel_array, load(tmp_path / "00_baseline.jpg").pixels)
    if CHROMIUM:
        assert (out / "r.pdf").read_bytes().startswith(b"%PDF")
        assert sum(d.SOPClassUID == PDF for d in ds) == 1
    doc = json.loads((out / "f.json").read_text())
    media = _resources(doc, "Media")
    assert [m["content"]["title"] for m in media] == [r[0] for r in rows]
    assert all(m["subject"]["identifier"]["value"] == "S-42" for m in media)


def test_fhir_per_zone_values_take_their_metrics_unit_and_scale():
    """A per-zone value (`<metric>.<zone>`) is exported in its metric's unit, and in
    relative units when the bundle's photos had no physical scale and the metric is
    defined in millimetres, whichever photo holds the zone."""
    pytest.importorskip("fhir.resources")
    from photokit.exports.fhir import BundleBuilder

    b = BundleBuilder()
    b.observation("redness.a_mean.cheek_left", 5.0)
    b.observation("texture.pore_density.cheek_left", 30.0)
    b.relative = True
    b.observation("texture.pore_density.chin", 30.0)
    b.observation("redness.a_mean.chin", 5.0)
    q = {e["resource"].code.text: e["resource"].valueQuantity for e in b.entries}
    assert q["redness.a_mean.cheek_left"].unit == "a*"
    assert (q["texture.pore_density.cheek_left"].code, q["texture.pore_density.cheek_left"].system) == (
        "/cm2", "http://unitsofmeasure.org")
    assert q["texture.pore_density.chin"].code == "relative:1/cm^2"
    assert q["redness.a_mean.chin"].code == "a*"
