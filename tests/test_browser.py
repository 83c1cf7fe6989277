"""The compare report in a real headless Chromium (Debian package, driven by Playwright).

Opens the report from a file:// URL and checks what a clinician and a patient rely on:
no console errors, no network request of any kind (only data: and file:), the slider
follows the pointer, blink/flip toggle, a file name full of markup is shown as text and
never runs, every picture decodes; then takes a screenshot.

Skipped only when Chromium is not installed (``.ci/run`` installs the ``chromium``
package). Set ``PHOTOKIT_SCREENSHOTS=DIR`` to keep the screenshots.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from photokit.report import compare_page as P
from photokit.report import html as R

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS_NAME = "<img src=x onerror=alert(1)>.jpg"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (/usr/bin/chromium); apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, path: Path):
    """Open `path`, recording console errors, page errors, dialogs and every request."""
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    log = {"errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: log["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    page.on("request", lambda r: log["requests"].append(r.url))
    page.on("requestfailed", lambda r: log["errors"].append(f"failed {r.url}"))

    def on_dialog(d):
        log["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    # anything that is not the file itself or embedded data is recorded and refused
    ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
              else (log["errors"].append(f"network {route.request.url}"), route.abort()))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return ctx, page, log


def _exercise(page, log, shot: Path):
    # every picture decoded
    broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                           ".map(i => i.alt)")
    assert broken == []
    # the hostile file name is text, not markup
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert XSS_NAME in page.inner_text("footer")

    box = page.locator("#cmp")
    box.scroll_into_view_if_needed()
    bb = box.bounding_box()
    assert float(box.get_attribute("data-pos")) == pytest.approx(50.0)
    clip0 = page.evaluate("getComputedStyle(document.getElementById('cmp-after')).clipPath")
    handle0 = page.locator("#cmp-handle").bounding_box()["x"]
    # drag the divide from the middle to a quarter of the width
    y = bb["y"] + bb["height"] / 2
    page.mouse.move(bb["x"] + bb["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(bb["x"] + bb["width"] * 0.35, y, steps=5)
    page.mouse.move(bb["x"] + bb["width"] * 0.25, y, steps=5)
    page.mouse.up()
    pos = float(box.get_attribute("data-pos"))
    assert pos == pytest.approx(25.0, abs=1.0)
    clip1 = page.evaluate("getComputedStyle(document.getElementById('cmp-after')).clipPath")
    assert clip1 != clip0 and "25" in clip1
    handle1 = page.locator("#cmp-handle").bounding_box()["x"]
    assert handle1 - handle0 == pytest.approx(-0.25 * bb["width"], abs=3)
    assert float(page.locator("#cmp-range").input_value()) == pytest.approx(pos, abs=0.2)
    # the range input moves it too (keyboard users)
    page.locator("#cmp-range").focus()
    page.keyboard.press("End")
    assert float(box.get_attribute("data-pos")) == pytest.approx(100.0)

    # flip and blink
    page.click("#btn-flip")
    assert box.get_attribute("data-view") == "after"
    page.click("#btn-flip")
    assert box.get_attribute("data-view") == "before"
    page.click("#btn-blink")
    assert page.locator("#btn-blink").get_attribute("aria-pressed") == "true"
    seen = set()
    for _ in range(12):
        seen.add(box.get_attribute("data-view"))
        page.wait_for_timeout(150)
    assert seen == {"before", "after"}
    page.click("#btn-blink")
    assert page.locator("#btn-blink").get_attribute("aria-pressed") == "false"
    assert box.get_attribute("data-view") == "slider"
    page.click("#btn-slider")
    page.locator("#cmp-range").fill("50")

    page.screenshot(path=str(shot), full_page=True)
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[1] == 1200 and img.std() > 20
    keep = os.environ.get("PHOTOKIT_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)

    assert log["errors"] == []
    assert log["dialogs"] == []
    assert all(u.startswith(("data:", "file:")) for u in log["requests"]), log["requests"]


def _fixture_view() -> P.CompareView:
    from skimage import data

    img = data.astronaut()
    after = img.copy()
    after[150:260, 170:300, 0] = np.clip(after[150:260, 170:300, 0].astype(int) + 25, 0, 255)
    mask = np.zeros(img.shape[:2], bool)
    cv2.ellipse(mask.view(np.uint8), (235, 200), (70, 95), 0, 0, 360, 1, -1)
    a = np.where(mask, img[..., 0] / 10.0, np.nan).astype(np.float32)
    mp = P.MapPair("Redness", "a*", a, a + 1, np.where(mask, 1.0, np.nan).astype(np.float32), mask,
                   "Reds", "RdBu_r", mdc=0.8)
    rows = [R.MetricRow("redness.a_mean", "mean CIELAB a*", "a*", 12.0, 14.0, 2.0, 16.7, 0.8, "lower")]
    return P.CompareView(img, after, mask, np.ones_like(mask), rows, XSS_NAME, "after.jpg", maps=[mp],
                         spots=[P.Spot(200, 200, 6, "new")], warnings=[f"about {XSS_NAME}"],
                         params=[("Before", XSS_NAME)], subtitle=XSS_NAME)


def test_report_from_arrays_in_chromium(browser, tmp_path):
    path = tmp_path / "view.html"
    path.write_text(P.render_compare(_fixture_view()), encoding="utf-8")
    ctx, page, log = _open(browser, path)
    try:
        _exercise(page, log, tmp_path / "compare_report_arrays.png")
    finally:
        ctx.close()


def test_cli_compare_report_in_chromium(browser, tmp_path):
    """End to end: two synthetic visits -> ``photokit compare --report`` -> Chromium."""
    from photokit.cli.main import cli
    from photokit.synth import SkinParams, make_pair

    pair = make_pair(2, SkinParams(width=720, height=540, mm_per_px=0.1), erythema=0.3)
    before = tmp_path / XSS_NAME
    after = tmp_path / "visit 2.jpg"
    pair.before.save(before, truth=False)
    pair.after.save(after, truth=False)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(cli, ["compare", str(before), str(after), "--mm-per-px", "0.1",
                                   "--report", str(out), "--note", "<b>note</b>"])
    assert res.exit_code == 0, res.output
    assert "alignment: ok" in res.stdout and "redness.a_mean" in res.stdout
    html = out.read_text(encoding="utf-8")
    assert "&lt;b&gt;note&lt;/b&gt;" in html and len(html.encode()) < 4_000_000
    ctx, page, log = _open(browser, out)
    try:
        _exercise(page, log, tmp_path / "compare_report.png")
    finally:
        ctx.close()
