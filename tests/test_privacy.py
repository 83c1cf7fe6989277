"""De-identification: no names, folder paths or GPS in any output; no EXIF in any image;
an opaque mask over eyes and eyebrows.

The inputs carry what real clinic photos carry: GPS and an artist name in EXIF, an XMP
packet with the patient's name, and a folder named after the patient
(``Jane_Doe_1970/visit1.jpg``), made from ``skimage.data.astronaut()``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image

from photokit.cli.main import cli
from photokit.exports.privacy import Scrubber
from photokit.faces.deidentify import (
    LEFT_BROW,
    LEFT_EYE,
    RIGHT_BROW,
    RIGHT_EYE,
    eye_brow_mask,
    inter_ocular,
    mask_eyes,
)
from photokit.io.atomic import encode_image

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
       b'22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">'
       b"<dc:creator>Jane Doe</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>")
NAMES = ("Jane", "Doe_1970", "visit1", "visit2")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _exif(when: str) -> bytes:
    ex = Image.Exif()
    ex[0x0132] = when
    ex[0x013B] = "Jane Doe"  # Artist
    ex[0x8825] = {1: "N", 2: (51.0, 30.0, 12.0), 3: "W", 4: (0.0, 7.0, 39.0)}  # GPS
    return ex.tobytes()


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    root = tmp_path_factory.mktemp("clinic")
    folder = root / "Jane_Doe_1970"
    folder.mkdir()
    a = skimage.data.astronaut()
    for name, arr, when in (("visit1.jpg", a, "2024:01:02 10:00:00"),
                            ("visit2.jpg", np.roll(a, (4, 6), axis=(0, 1)), "2024:02:02 10:00:00")):
        Image.fromarray(arr).save(folder / name, quality=95, exif=_exif(when), xmp=XMP)
    assert Image.open(folder / "visit1.jpg").getexif().get_ifd(0x8825)  # GPS really there
    return folder


def _visible_text(data: bytes) -> str:
    """Text a reader could see: data URIs and base64 blobs dropped (they match by chance)."""
    text = data.decode("utf-8", "replace")
    for m in re.finditer(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", text):
        text += base64.b64decode(m.group(1)).decode("utf-8", "replace")
    text = re.sub(r"data:[a-z/+]+;base64,[A-Za-z0-9+/=]+", "", text)
    return re.sub(r'"data": "[A-Za-z0-9+/=]+"', "", text)


def _no_names(text: str, folder) -> list[str]:
    return [n for n in (*NAMES, str(folder), str(folder.parent)) if n in text]


def _no_metadata(path) -> None:
    raw = path.read_bytes()
    assert b"Exif\0\0" not in raw and b"GPS" not in raw and b"ns.adobe.com/xap" not in raw
    assert b"adobe:ns:meta" not in raw and b"Jane" not in raw
    with Image.open(path) as im:
        assert not im.getexif() and "xmp" not in im.info and "exif" not in im.info


def _dicom_text(path) -> str:
    pydicom = pytest.importorskip("pydicom")
    ds = pydicom.dcmread(path)
    return "\n".join(str(el.value) for el in ds.iterall()
                     if el.keyword not in ("PixelData", "EncapsulatedDocument"))


@pytest.fixture(scope="module")
def compare_outputs(patient, tmp_path_factory):
    pytest.importorskip("pydicom")
    pytest.importorskip("fhir.resources")
    out = tmp_path_factory.mktemp("out")
    args = ["compare", str(patient / "visit1.jpg"), str(patient / "visit2.jpg"), "--deidentify",
            "--report", str(out / "r.html"), "--fhir", str(out / "f.json"), "--dicom", str(out / "dcm"),
            "--json"]
    if CHROMIUM:
        args += ["--pdf", str(out / "r.pdf")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output + r.stderr
    return out, r.stdout, r.stderr


def test_compare_outputs_carry_no_names_paths_or_gps(patient, compare_outputs):
    out, stdout, stderr = compare_outputs
    assert not _no_names(stdout, patient)
    assert json.loads(stdout)["before"]["image"] == "photo 1"
    for f in ("r.html", "f.json"):
        text = _visible_text((out / f).read_bytes())
        assert not _no_names(text, patient), f
        assert "GPS" not in text and "Artist" not in text
    for f in sorted((out / "dcm").iterdir()):
        assert not _no_names(_dicom_text(f), patient), f.name
    if CHROMIUM and shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(out / "r.pdf"), "-"], capture_output=True,
                              text=True, check=True).stdout
        assert "photo 1" in text and not _no_names(text, patient)


def test_fhir_and_dicom_have_no_patient_unless_given(compare_outputs):
    out, _, _ = compare_outputs
    doc = json.loads((out / "f.json").read_text())
    assert all("subject" not in e["resource"] for e in doc["entry"])
    import pydicom

    for f in (out / "dcm").iterdir():
        ds = pydicom.dcmread(f)
        assert str(ds.PatientName) == "" and ds.PatientID == ""


def test_deidentified_pictures_are_masked(compare_outputs):
    """The stored photos (DICOM, FHIR Media) have eyes and brows under an opaque fill."""
    import pydicom

    from photokit.faces.mesh import find_faces

    out, _, _ = compare_outputs
    ds = pydicom.dcmread(out / "dcm" / "01_before.dcm")
    stored = ds.pixel_array
    faces = find_faces(skimage.data.astronaut())
    mask = eye_brow_mask(stored.shape, faces)
    assert mask.sum() > 500 and (stored[mask] == 0).all()
    doc = json.loads((out / "f.json").read_text())
    media = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Media"]
    rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(media[0]["content"]["data"]))))
    assert rgb[mask].mean() < 8  # black under JPEG ringing


def test_image_outputs_never_carry_exif(patient, tmp_path):
    pytest.importorskip("pydicom")
    a, b = str(patient / "visit1.jpg"), str(patient / "visit2.jpg")
    runner = CliRunner()
    for deid in ([], ["--deidentify"]):
        d = tmp_path / ("deid" if deid else "plain")
        r = runner.invoke(cli, ["align", a, b, "-o", str(d / "al.jpg"), "--overlay", str(d / "ov.png"),
                                *deid])
        assert r.exit_code == 0, r.stderr
        r = runner.invoke(cli, ["face", a, "--overlay", str(d / "face.jpg"), *deid])
        assert r.exit_code == 0, r.stderr
        r = runner.invoke(cli, ["measure", a, "--maps", str(d / "maps"), *deid])
        assert r.exit_code == 0, r.stderr
        images = [d / "al.jpg", d / "ov.png", d / "face.jpg", *sorted((d / "maps").iterdir())]
        for p in images:
            _no_metadata(p)
        if deid:
            assert not [p for p in images if _no_names(p.name, patient)]
            assert not _no_names(r.stdout, patient)


def test_encode_image_writes_no_metadata(astronaut):
    for ext in (".jpg", ".png", ".tiff", ".webp"):
        data = encode_image(astronaut, ext)
        with Image.open(io.BytesIO(data)) as im:
            exif = im.getexif()  # TIFF: its own baseline tags only
            assert 0x8769 not in exif and 0x8825 not in exif and 0x013B not in exif, ext
            assert not exif or ext == ".tiff", ext
            assert "xmp" not in im.info and "exif" not in im.info and b"GPS" not in data


# -- the mask itself ----------------------------------------------------------------------

def _synthetic_face(scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """468 landmarks far away, with eyes and brows placed like a frontal face."""
    lm = np.full((468, 3), -1000.0)
    for idx, cx in ((RIGHT_EYE, 200.0), (LEFT_EYE, 300.0)):
        t = np.linspace(0, 2 * np.pi, len(idx), endpoint=False)
        lm[list(idx), 0] = cx + 20 * np.cos(t)
        lm[list(idx), 1] = 200 + 8 * np.sin(t)
    for idx, cx in ((RIGHT_BROW, 200.0), (LEFT_BROW, 300.0)):
        lm[list(idx), 0] = np.linspace(cx - 25, cx + 25, len(idx))
        lm[list(idx), 1] = 170 - 5 * np.sin(np.linspace(0, np.pi, len(idx)))
    lm[:, :2] = (lm[:, :2] - 250) * scale + 250 + np.asarray(shift)
    return lm


def test_mask_is_opaque_and_covers_eyes_and_brows():
    rgb = np.full((400, 500, 3), 180, np.uint8)
    lm = _synthetic_face()
    masked, mask = mask_eyes(rgb, [lm])
    assert (rgb == 180).all()  # pure: input untouched
    assert (masked[mask] == 0).all() and (masked[~mask] == 180).all()
    for idx in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW):
        pts = np.round(lm[list(idx), :2]).astype(int)
        assert mask[pts[:, 1], pts[:, 0]].all()
    # grown by 0.15 x the inter-ocular distance (100 px) beyond the outermost brow point
    d = inter_ocular(lm)
    assert d == pytest.approx(100, abs=0.5)
    assert mask[170 - 5 - 14, 200] and not mask[170 - 5 - 17, 200]


def test_mask_margin_scales_with_the_face():
    small, big = _synthetic_face(1.0), _synthetic_face(2.0)
    shape = (700, 800)
    a_small = eye_brow_mask(shape, [small]).sum()
    a_big = eye_brow_mask(shape, [big]).sum()
    assert a_big / a_small == pytest.approx(4.0, rel=0.05)  # area scales with the square


def test_no_face_no_mask():
    rgb = np.zeros((50, 60, 3), np.uint8) + 7
    masked, mask = mask_eyes(rgb, [])
    assert not mask.any() and (masked == rgb).all()


def test_mask_on_a_real_face(astronaut):
    from photokit.faces.mesh import find_faces

    faces = find_faces(astronaut)
    masked, mask = mask_eyes(astronaut, faces)
    f = faces[0]
    for iris in (f.iris_left, f.iris_right):
        x, y = np.round(iris.center).astype(int)
        assert mask[y, x] and (masked[y, x] == 0).all()
    assert 0.005 < mask.mean() < 0.08  # eyes and brows, not the face


def test_scrubber_replaces_paths_names_and_svg(tmp_path):
    folder = tmp_path / "Jane_Doe_1970"
    folder.mkdir()
    p1, p2 = folder / "visit1.jpg", folder / "visit2.jpg"
    s = Scrubber([p1, p2], [folder / "roi.json"])
    svg = base64.b64encode(f"<svg><text>{p2.name}</text></svg>".encode()).decode()
    page = (f"<p>{p1}</p><p>{folder}</p><p>visit2.jpg</p><p>{json.dumps(str(p1))}</p>"
            f'<img src="data:image/svg+xml;base64,{svg}"><p>roi.json</p>')
    out = s.html(page)
    assert "Jane" not in _visible_text(out.encode()) and "visit" not in _visible_text(out.encode())
    assert "photo 1" in out and "photo 2" in out and "input" in out
    assert s.doc({"image": str(p1), "list": [p2.name]}) == {"image": "photo 1", "list": ["photo 2"]}


def test_series_outputs_carry_no_names_paths_or_gps(patient, tmp_path):
    pytest.importorskip("pydicom")
    pytest.importorskip("fhir.resources")
    (patient / "manifest.csv").write_text("photo,date,kind\nvisit1.jpg,2024-01-02,baseline\n"
                                          "visit2.jpg,2024-02-02,visit\n")
    out = tmp_path / "out"
    args = ["series", str(patient / "manifest.csv"), "--deidentify", "--report", str(out / "r.html"),
            "--csv", str(out / "s.csv"), "--fhir", str(out / "f.json"), "--dicom", str(out / "dcm")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.stderr
    assert not _no_names(r.stdout, patient) and "photo 1" in r.stdout
    assert not _no_names(r.stderr, patient) and "photo 1" in r.stderr   # the progress lines too
    for f in ("r.html", "s.csv", "f.json"):
        text = _visible_text((out / f).read_bytes())
        assert not _no_names(text, patient), f
        assert "GPS" not in text
    assert "photo 2" in (out / "s.csv").read_text()
    for f in sorted((out / "dcm").iterdir()):
        assert not _no_names(_dicom_text(f), patient), f.name
    r = CliRunner().invoke(cli, ["series", str(patient / "manifest.csv"), "--deidentify", "--json"])
    assert r.exit_code == 0 and not _no_names(r.stdout, patient)
    assert json.loads(r.stdout)["baseline"] == "photo 1"
