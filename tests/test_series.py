"""Series manifests, timelines, and the full series analysis on synthetic courses."""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photokit.errors import PhotokitError
from photokit.series.course import parse_date, read_folder, read_manifest, read_series, same_moment, timeline


def _img(path, seed=0, exif_time=None):
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    if exif_time is None:
        im.save(path)
    else:
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = exif_time
        exif[0x0132] = exif_time
        im.save(path, exif=exif)


def _manifest(tmp_path, text):
    p = tmp_path / "manifest.csv"
    p.write_text(text)
    return p


def test_parse_date_forms():
    assert parse_date("2024-03-05") == (datetime(2024, 3, 5), True)
    assert parse_date("2024-03-05T14:30") == (datetime(2024, 3, 5, 14, 30), False)
    assert parse_date("2024-03-05T14:30:00+02:00")[0] == datetime(2024, 3, 5, 12, 30)
    for bad in ("05/03/2024", "2024-13-01", "yesterday", ""):
        with pytest.raises(ValueError):
            parse_date(bad)


def test_valid_manifest_sorted_with_timeline(tmp_path):
    for n in "abcd":
        _img(tmp_path / f"{n}.jpg")
    m = _manifest(tmp_path, "photo,date,kind,note\n"
                  "c.jpg,2024-01-03T12:00,visit,day 2\n"
                  "a.jpg,2024-01-01,baseline,\n"
                  "b.jpg,2024-01-01T12:00,treatment,session 1\n"
                  "d.jpg,2024-02-01,visit,<b>x</b>\n")
    entries = read_manifest(m)
    assert [e.photo for e in entries] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert entries[1].note == "session 1" and entries[3].note == "<b>x</b>"
    tl = timeline(entries)
    assert tl[0]["days_since_treatment"] is None
    assert tl[1]["days_since_treatment"] == 0.0
    assert tl[2]["days_since_treatment"] == pytest.approx(2.0)
    assert tl[3]["days_since_baseline"] == pytest.approx(31.0)


def test_broken_manifest_lists_every_problem(tmp_path):
    _img(tmp_path / "a.jpg")
    _img(tmp_path / "b.jpg")
    (tmp_path / "notimage.jpg").write_text("hello")
    m = _manifest(tmp_path, "photo,date,kind\n"
                  "a.jpg,2024-01-01,visit\n"
                  "missing.jpg,2024-01-02,visit\n"
                  "b.jpg,01/02/2024,visit\n"
                  "a.jpg,2024-01-05,visit\n"
                  "notimage.jpg,2024-01-06,visit\n"
                  "b.jpg,2024-01-07,sessionx\n")
    with pytest.raises(PhotokitError) as ei:
        read_manifest(m)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(m))
    for part in ("line 3: photo 'missing.jpg' not found", "line 4: bad date",
                 "line 5: duplicate photo 'a.jpg'",
                 "line 6: photo 'notimage.jpg' is not a recognised image format (JPEG, PNG",
                 "line 7: unknown kind 'sessionx'", "no baseline"):
        assert part in msg, part
    assert "Error" not in msg           # load's words, not a Python exception's name


@pytest.mark.parametrize("text,needle", [
    ("photo,when,kind\na.jpg,2024-01-01,baseline\n", "lacks column(s) date"),
    ("", "manifest is empty"),
    ("photo,date,kind\na.jpg,2024-01-01,baseline\nb.jpg,2024-01-02,baseline\n", "more than one baseline"),
    ("photo,date,kind\na.jpg,2024-01-05,baseline\nb.jpg,2024-01-02,treatment\n", "dated before the baseline"),
    ("photo,date,kind,subject\na.jpg,2024-01-01,baseline,p1\nb.jpg,2024-01-02,visit,p2\n", "mixes subjects"),
])
def test_manifest_level_problems(tmp_path, text, needle):
    _img(tmp_path / "a.jpg")
    _img(tmp_path / "b.jpg")
    import gc
    import warnings
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(PhotokitError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            read_manifest(_manifest(tmp_path, text))
        gc.collect()
    # the manifest is closed though its rows were never read (an unclosed-file warning
    # was a second line on stderr: QA, 2026-12-08)
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]


def test_photos_dated_the_same_moment_are_named(tmp_path):
    """Two visits' photos given one time were fitted as one moment, silently (QA, 2026-12-08)."""
    for n in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        _img(tmp_path / n)
    entries = read_manifest(_manifest(tmp_path, "photo,date,kind\na.jpg,2024-01-01,baseline\n"
                                      "b.jpg,2024-01-03T09:30,visit\nc.jpg,2024-01-03T09:30,visit\n"
                                      "d.jpg,2024-01-09,visit\n"))
    assert same_moment(entries) == ["b.jpg, c.jpg are dated the same moment (2024-01-03 09:30): measured "
                                    "as one time point (give each photo its own date and time if they "
                                    "were taken apart)"]
    assert same_moment(entries[:2] + entries[3:]) == []
    # dates without a time are no moment: a baseline and a treatment photo of one day
    one_day = read_manifest(_manifest(tmp_path, "photo,date,kind\na.jpg,2024-01-05,baseline\n"
                                      "b.jpg,2024-01-05,treatment\n"))
    assert same_moment(one_day) == []


def test_folder_ordered_by_exif_time(tmp_path):
    _img(tmp_path / "zz.jpg", exif_time="2024:01:01 09:00:00")
    _img(tmp_path / "aa_session1.jpg", exif_time="2024:01:02 10:00:00")
    _img(tmp_path / "mm.jpg", exif_time="2024:01:09 10:00:00")
    entries = read_folder(tmp_path)
    assert [(e.photo, e.kind) for e in entries] == [
        ("zz.jpg", "baseline"), ("aa_session1.jpg", "treatment"), ("mm.jpg", "visit")]
    _img(tmp_path / "noexif.jpg")
    with pytest.raises(PhotokitError, match="'noexif.jpg' has no EXIF capture time") as ei:
        read_folder(tmp_path)
    # the way out is a hint, not counted as a problem
    assert "1 problem in the series" in str(ei.value) and str(ei.value).endswith(
        "(write a manifest.csv (photo,date,kind) to give their dates)")


def test_list_input_and_errors(tmp_path):
    a = np.zeros((40, 40, 3), np.uint8)
    entries = read_series([(a, "2024-01-01", "baseline"), (a.copy(), "2024-01-03", "visit")])
    assert [e.kind for e in entries] == ["baseline", "visit"]
    with pytest.raises(PhotokitError, match="item 1: bad date.*item 2: unknown kind"):
        read_series([(a, "2024-01-01", "baseline"), (a, "nope", "visit"), (a, "2024-01-02", "x")])


def _warped(base, ang, sc, tx, ty):
    import cv2

    h, w = base.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, sc)
    m[:, 2] += (tx, ty)
    out = cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    H = np.vstack([m, [0, 0, 1]])  # maps base pixels -> warped pixels
    return out, H


def test_chained_alignment_composes_to_the_true_transform():
    from skimage import data

    from photokit.registration.align import align
    from photokit.series.course import _chain

    base = data.astronaut()
    b, hb = _warped(base, 4.0, 1.04, 9, -6)
    c, hc = _warped(base, -5.0, 0.95, -12, 8)
    ab, bc = align(base, b), align(b, c)
    assert ab.ok and bc.ok
    chained = _chain(ab, bc)
    truth = np.linalg.inv(hc)  # c pixels -> base pixels
    corners = np.array([[0, 0, 1], [511, 0, 1], [0, 511, 1], [511, 511, 1]], float).T
    got = chained.homography @ corners
    want = truth @ corners
    err = np.abs(got[:2] / got[2] - want[:2] / want[2]).max()
    assert err < 2.0, err
    assert chained.ok and chained.confidence <= min(ab.confidence, bc.confidence) + 1e-9


# ----------------------------------------------------------------------------- end to end
# Synthetic courses from photokit.synth: known tau, known improvement, and a flat course.

TAU = 3.0
MM_PER_PX = 0.08  # fine enough for the 0.2-2 mm texture band; given to the series as the baseline scale


def _params():
    from photokit.synth import SkinParams

    return SkinParams(card=True, width=640, height=480, mm_per_px=MM_PER_PX)


def _posed_baseline(out, res, seed, strength=1.0):
    """Re-take the baseline with a small pose change, as every later photo has.

    make_series keeps the baseline at the canonical pose, so it is the only photo the
    renderer does not resample, and its fine texture is a few percent sharper than any
    later photo's; a real baseline is a photo like the others. The ROIs are rewritten in
    the new baseline's pixels.
    """
    import json
    from datetime import datetime

    from photokit import synth
    from photokit.synth import Camera

    im = synth.render_skin(_params(), seed, camera=Camera.random(np.random.default_rng(99), strength,
                                                                  light=False))
    im.save(out / res.photos[0]["photo"], date=datetime.fromisoformat(res.photos[0]["date"]))
    for region, name in (("roi", "roi.json"), ("reference", "reference_roi.json")):
        poly = np.asarray(im.truth.regions[region]["polygon"]).tolist()
        (out / name).write_text(json.dumps({"polygons": [poly]}))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    from photokit import synth
    from photokit.series.course import Series

    out = tmp_path_factory.mktemp("course")
    res = synth.make_series(out, seed=5, sessions=1, tau_days=TAU, visit_days=(0, 1, 3, 6),
                            final_visit_days=60, texture_improvement=0.35, params=_params(),
                            contact_sheet=False)
    _posed_baseline(out, res, 5)
    s = Series(out / "manifest.csv", reference_roi=str(out / "reference_roi.json"),
               mm_per_px=MM_PER_PX).analyse()
    return out, res, s


@pytest.fixture(scope="module")
def flat_course(tmp_path_factory):
    from photokit import synth
    from photokit.series.course import Series

    out = tmp_path_factory.mktemp("flat")
    res = synth.make_series(out, seed=6, sessions=1, visit_days=(0, 2, 5), final_visit_days=40,
                            flat=True, params=_params(), contact_sheet=False, camera_strength=0.5)
    _posed_baseline(out, res, 6, 0.5)
    return Series(out / "manifest.csv", reference_roi=str(out / "reference_roi.json"),
                  mm_per_px=MM_PER_PX).analyse()


def test_recovery_tau_within_20pct_of_truth(course):
    _, res, s = course
    assert all(v.ok for v in s.visits), [(v.photo, v.reason) for v in s.visits]
    fits = {r.metric: r.fit for r in s.recovery}
    for name in ("redness.a_mean", "redness.ei_mean"):
        f = fits[name]
        assert f.ok, f.reason
        assert abs(f.tau_days - TAU) / TAU < 0.20, (name, f.tau_days)
        assert f.tau_ci[0] < f.tau_days < f.tau_ci[1]
        # days to baseline from the truth curve: excess A exp(-t/tau) falls below the MDC
        ph = res.photos
        a0 = (ph[1]["metrics"][name] - ph[0]["metrics"][name]) * math.exp(ph[1]["days_since_treatment"] / TAU)
        true_days = TAU * math.log(a0 / f.mdc)
        assert f.days_to_baseline == pytest.approx(true_days, rel=0.25)
        assert not f.persistent
    assert not [f for f in s.flags if f["kind"] != "excluded"], s.flags


def test_improvement_matches_truth(course):
    _, res, s = course
    truth = res.truth["trend"]["texture.roughness"]["percent_change"]
    tr = s.trend["texture.roughness"]
    assert truth < -10  # the course did smooth the skin (texture improvement 35 %)
    assert tr.percent_change == pytest.approx(truth, abs=4.0)
    assert tr.significant and tr.improved
    # only visits outside the acute window count: the day 0-6 photos are not trend points
    assert [p.photo for p in tr.points] == [res.photos[-1]["photo"]]


def test_trend_plot_leaves_out_metrics_with_a_baseline_inside_their_noise_floor(course):
    from photokit.report.series_page import trend_metrics

    _, _, s = course
    shown = trend_metrics(s)
    assert shown and "texture.roughness" in shown
    def floor(t):     # the trend's per-pair floor, else the registered one
        return t.noise_floor if t.noise_floor is not None else t.mdc

    for name in shown:
        assert abs(s.trend[name].baseline) > floor(s.trend[name])
    below = [k for k, t in s.trend.items() if t.baseline is not None and abs(t.baseline) <= floor(t)]
    assert below and not set(below) & set(shown)       # e.g. a count of a few spots
    assert trend_metrics(s, below) == below           # still plotted when asked for


def test_flat_course_has_no_significant_trend(flat_course):
    # light and pose change (half the generator's default range), the skin does not
    s = flat_course
    assert all(v.ok for v in s.visits)
    sig = {k: t.percent_change for k, t in s.trend.items() if t.significant}   # every metric
    assert not sig, sig
    for r in s.recovery:
        assert r.fit.status == "none" and "no rise above the noise floor" in r.fit.reason
    assert [f for f in s.flags if f["kind"] in ("persistent_redness", "new_pigment")] == []


def test_exports_and_json_shape(course, tmp_path):
    import csv
    import json

    from photokit.cli.options import json_clean

    _, res, s = course
    d = json.loads(json.dumps(json_clean(s.to_dict()), allow_nan=False))
    assert d["baseline"] == res.photos[0]["photo"]
    assert len(d["visits"]) == len(res.photos)
    v = d["visits"][2]
    for key in ("photo", "date", "kind", "days_since_treatment", "alignment", "metrics", "delta"):
        assert key in v
    assert v["alignment"]["method"] in ("direct", "chained") and v["alignment"]["confidence"] > 0.5
    rec = d["recovery"][0]
    for key in ("treatment_date", "tau_days", "days_to_baseline", "metric"):
        assert key in rec
    assert set(d["trend"]["texture.roughness"]) >= {"percent_change", "significant"}
    s.to_csv(tmp_path / "s.csv")
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert len(rows) == len(res.photos) and "redness.a_mean" in rows[0] and "delta.redness.a_mean" in rows[0]
    df = s.to_frame()
    assert df.shape[0] == len(res.photos) and "texture.roughness" in df.columns


def test_report_is_self_contained_and_escapes(course, tmp_path):
    import shutil

    out, res, s = course
    evil = "<img src=x onerror=alert(1)>.jpg"
    shutil.copy(out / res.photos[0]["photo"], tmp_path / evil)
    shutil.copy(out / res.photos[-1]["photo"], tmp_path / "b.jpg")
    (tmp_path / "m.csv").write_text('photo,date,kind,note\n'
                                    f'"{evil}",2024-01-01,baseline,<script>alert(2)</script>\n'
                                    'b.jpg,2024-03-01,visit,\n')
    from photokit.series.course import Series

    s2 = Series(tmp_path / "m.csv", roi=str(out / "roi.json"))
    path = s2.write_report(tmp_path / "r.html")
    html = path.read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;.jpg" in html
    assert "<script>alert(2)" not in html and "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:|//)', html)
    assert "default-src 'none'" in html
    # timeline and trends; no recovery plot without a treatment session, and no claim
    # about complications that were not checked
    assert html.count("data:image/svg+xml;base64,") == 2
    assert "No treatment session in this series" in html and "No complication sign" not in html
    assert s2._repr_html_().count("<img") >= 3


def test_excluded_visit_is_reported_not_used(course, tmp_path):
    from skimage import data

    from photokit.series.course import Series

    out, res, s = course
    # a photo of something else entirely: its alignment must fail and it must be excluded
    Image.fromarray(data.coffee()).save(tmp_path / "other.jpg")
    rows = ["photo,date,kind"]
    for ph in res.photos[:2]:
        rows.append(f"{out / ph['photo']},{ph['date']},{ph['kind']}")
    rows.append(f"{tmp_path / 'other.jpg'},2026-01-07T09:30,visit")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    s2 = Series(tmp_path / "m.csv", roi=str(out / "roi.json")).analyse()
    bad = s2.visits[-1]
    assert bad.status == "excluded" and "alignment failed" in bad.reason
    assert bad.metrics == {} and bad.delta == {}
    assert any(f["kind"] == "excluded" for f in s2.flags)
    assert all(bad.photo not in r.photos for r in s2.recovery)
    # the visits table says what failed: here the alignment; for a photo that cannot be
    # read, the loading (it said "failed" alignment: QA, 2026-12-08)
    assert "<td>failed</td>" in s2.report_html()
    bad.reason = "cannot load: file is empty"
    page = s2.report_html()
    assert "<td>not loaded</td>" in page and "<td>failed</td>" not in page


def test_cli_series_and_broken_manifest(course, tmp_path):
    import json

    from click.testing import CliRunner

    from photokit.cli.main import cli

    out, res, s = course
    first, last = res.photos[0], res.photos[-1]
    (tmp_path / "m.csv").write_text("photo,date,kind\n"
                                    f"{out / first['photo']},{first['date']},baseline\n"
                                    f"{out / last['photo']},{last['date']},visit\n")
    r = CliRunner().invoke(cli, ["series", str(tmp_path / "m.csv"), "--json", "--roi", str(out / "roi.json"),
                                 "--mm-per-px", str(MM_PER_PX),
                                 "--csv", str(tmp_path / "x.csv"), "--report", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["baseline"].endswith(first["photo"]) and doc["recovery"] == []
    assert doc["visits"][1]["delta"]["texture.roughness"] < 0
    assert (tmp_path / "x.csv").exists() and (tmp_path / "r.html").exists()
    (tmp_path / "bad.csv").write_text("photo,date,kind\nnope.jpg,2024-02-31,visit\n")
    r = CliRunner().invoke(cli, ["series", str(tmp_path / "bad.csv")])
    assert r.exit_code == 1
    err = r.stderr
    assert "photo 'nope.jpg' not found" in err and "bad date" in err and "no baseline" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.browser
def test_report_renders_in_headless_chromium(course, tmp_path):
    import shutil
    import subprocess

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium not installed")
    _, _, s = course
    page = s.write_report(tmp_path / "r.html")
    shot = tmp_path / "shot.png"
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1200,2000", f"--screenshot={shot}", page.resolve().as_uri()],
                   check=True, timeout=120, capture_output=True)
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (2000, 1200)
    # not a blank page: the plots and thumbnails put real contrast on screen
    assert img.std() > 20


def test_default_region_is_the_skin_measure_finds_on_a_face():
    """Without an ROI, a series follows the skin `measure` analyses in the baseline:
    seeded on the face, its eyes, brows and lips left out."""
    from skimage import data

    from photokit.measurement.measure import measure
    from photokit.series.course import series

    from .conftest import mesh_features

    base = data.astronaut()
    later, _ = _warped(base, 2.0, 1.01, 4, -3)
    s = series([(base, "2024-01-01", "baseline"), (later, "2024-01-29", "visit")])
    own = measure(base, metrics=[]).analysis.mask
    assert s.region_source == "skin" and s.region.any()
    assert not (s.region & ~own).any() and s.region.sum() > 0.9 * own.sum()
    assert not (s.region & mesh_features(base)).any()


def test_visits_and_trends_carry_their_own_noise_floors(course):
    """SPEC "Noise floors per comparison": each visit's floor is 1.96 sqrt(se_0^2 + se^2)
    from the baseline's and the visit's standard errors, and significance follows it."""
    import math

    _, _, s = course
    base = s.visits[0]
    for v in s.visits[1:]:
        d = v.to_dict()
        for name, floor in d["noise_floor"].items():
            se0, se = base.standard_error.get(name), v.standard_error.get(name)
            if floor is None:
                assert se0 is None or se is None
                continue
            assert floor == pytest.approx(1.96 * math.hypot(se0, se), rel=1e-3)
            if d["delta"].get(name) is not None:
                assert d["significant"][name] == (abs(v.delta[name]) > v.noise_floor[name])
    tr = s.to_dict()["trend"]["spots.count"]
    assert tr["noise_floor"] is not None and tr["noise_floor"] != tr["mdc"]


def test_a_visit_is_judged_as_compare_judges_the_pair(course, tmp_path):
    """Each visit against baseline is judged as `compare` judges the same pair
    (`photokit.comparison.sameskin.judge_pair`): photographed from 25 % farther away, the
    measures bound to the resolution (texture, lines, pores, spots, evenness) are not
    judged, for the same reasons; the visit carries the pair's lighting check and Holm
    results."""
    import shutil

    from photokit.comparison.compare import compare
    from photokit.series.course import Series

    out, res, _ = course
    shutil.copy(out / res.photos[0]["photo"], tmp_path / "base.jpg")
    far = Image.open(out / res.photos[-1]["photo"])
    far.resize((round(far.width * 0.8), round(far.height * 0.8)), Image.LANCZOS).save(tmp_path / "far.jpg",
                                                                                      quality=95)
    (tmp_path / "m.csv").write_text("photo,date,kind\nbase.jpg,2024-01-01,baseline\n"
                                    "far.jpg,2024-03-01,visit\n")
    ref = str(out / "reference_roi.json")
    s = Series(tmp_path / "m.csv", reference_roi=ref, mm_per_px=MM_PER_PX).analyse()
    v = s.visits[-1]
    assert v.ok
    assert re.search(r"resolutions differ by 2\d %", v.not_judged["texture.wrinkle_density"])
    assert v.significant["texture.wrinkle_density"] is None
    assert v.noise_floor["texture.wrinkle_density"] is None
    assert s.trend["texture.wrinkle_density"].significant is None
    assert v.lighting["where"] == "outside the region" and v.lighting["gain"] == pytest.approx(1.0, abs=0.1)
    c = compare(tmp_path / "base.jpg", tmp_path / "far.jpg", reference_roi=ref, mm_per_px=MM_PER_PX)
    judged = {k for k, f in c.noise_floor.items() if f is not None}   # the colour means, within 30 %
    assert judged == {"redness.a_mean", "redness.ei_mean", "redness.area_pct", "pigment.mi_mean",
                      "pigment.ita_mean"}
    assert judged == {k for k in c.noise_floor if v.noise_floor.get(k) is not None}
    for name, why in c.not_judged.items():
        if not why.endswith(("(BEFORE)", "(AFTER)")):
            assert v.not_judged[name] == why                 # the pair's reasons, word for word
    assert v.holm.keys() == c.holm.keys()
    assert {k for k, x in v.holm.items() if x} == {k for k, x in c.holm.items() if x}
    assert s.to_dict()["visits"][-1]["holm"] == v.holm


def test_a_series_without_a_scale_says_its_units_are_relative(flat_course, tmp_path):
    """Without --mm-per-px, a card of known size or a face, sizes and densities are per
    relative unit: the series says so (report notes, terminal), and a trend it could not
    judge reads 'not judged' in the terminal, not 'no detectable change'."""
    import shutil

    from photokit.cli.series import summary_lines
    from photokit.series.course import Series

    src = Path(flat_course.source).parent
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    s = Series(tmp_path / "manifest.csv", reference_roi=str(tmp_path / "reference_roi.json")).analyse()
    assert any(w.startswith("no physical scale known") for w in s.warnings)
    lines = summary_lines(s)
    assert any(line.startswith("note: no physical scale known") for line in lines)
    assert "no physical scale known" in s.report_html()
    scaled = flat_course                                   # the same photos given their scale
    assert not any(w.startswith("no physical scale known") for w in scaled.warnings)
    # a trend whose last change could not be judged reads so, not "no detectable change"
    name, t = next((k, t) for k, t in s.trend.items() if t.percent_change is not None)
    t.significant = None
    assert f"trend {name}: {t.percent_change:+.1f}% (not judged)" in summary_lines(s)


def test_a_chained_visit_keeps_what_the_faces_said():
    """A visit reached through another photo keeps the expression and warnings of its
    faces against the baseline: the direct alignment's (its meshes are those two photos'
    even when it failed), else the link that says the expression changed; so the
    expression rule of `judge_pair` applies to chained visits too."""
    from photokit.registration.align import Alignment
    from photokit.series.course import _chain

    def al(status, expression=None, warnings=()):
        return Alignment(status, None if status == "ok" else "x", np.eye(3), 0.9, 50, 0.5, 0.9, (100, 100),
                         (100, 100), tolerance_px=3.0, expression=expression, warnings=list(warnings))

    smile = {"changed": True, "smile_score": 0.5, "lip_opening": 0.1}
    calm = {"changed": False, "smile_score": 0.02, "lip_opening": 0.0}
    direct = al("failed", smile, ["the expression changed (...)"])
    c = _chain(al("ok", calm), al("ok", calm), direct)
    assert c.expression == smile and c.warnings == ["the expression changed (...)"]
    c = _chain(al("ok", calm), al("ok", smile, ["w2"]), al("failed"))        # a direct fit without meshes
    assert c.expression == smile and c.warnings == ["w2"]
    assert _chain(al("ok"), al("ok")).expression is None


def test_a_visit_whose_redness_is_not_judged_stays_out_of_the_recovery_fit(course, tmp_path):
    """A visit photographed at another resolution (43 % apart: beyond the 30 % the colour
    floors hold for) has its a* change not judged; its a* stays out of the recovery fit
    and the pre-treatment level too, not only out of the trends."""
    import shutil

    from photokit.series.course import Series

    out, res, s = course
    day3 = next(p["photo"] for p in res.photos if p["kind"] == "visit" and 2 < p["days_since_treatment"] < 4)
    for f in out.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    im = Image.open(out / day3)
    small = im.resize((round(im.width * 0.7), round(im.height * 0.7)), Image.LANCZOS)
    small.save(tmp_path / day3, quality=95)
    s2 = Series(tmp_path / "manifest.csv", reference_roi=str(tmp_path / "reference_roi.json"),
                mm_per_px=MM_PER_PX).analyse()
    v = next(v for v in s2.visits if v.photo == day3)
    assert v.ok and "resolutions differ" in v.not_judged["redness.a_mean"]
    r, r0 = s2.recovery[0], s.recovery[0]
    assert day3 in r0.photos and day3 not in r.photos
    assert set(r.photos) == set(r0.photos) - {day3}
