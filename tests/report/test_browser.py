"""The HTML report opened in a real browser (headless Chromium): it renders (the
screenshot is not blank) and every figure loads (each <img> decoded, checked from
inside the page).

Needs Debian's `chromium` package (`./bootstrap` installs it as root); skipped
with that reason when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from osbench import results
from osbench.report import Extras, build_report
from osbench.report.writer import write
from tests.report.runs import rootwrap_run

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs headless Chromium at /usr/bin/chromium (Debian package `chromium`; "
    "`./bootstrap` installs it when run as root)")

#: Flags that keep a headless run local and quiet: no sandbox (tests may run as
#: root, which Chromium's sandbox refuses), no GPU, no network side-traffic.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")

#: Appended to a test copy only (the report itself has no scripts): after load,
#: count the images the browser decoded and write the result into the DOM.
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const el = document.createElement("div");
  el.id = "probe";
  el.textContent = `figures-loaded=${ok}/${imgs.length}`;
  document.body.appendChild(el);
});
</script>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90, check=False)


@pytest.fixture
def report_html(boot: results.Run, netsweep: results.Run, tmp_path: Path) -> Path:
    probe = results.load(rootwrap_run(tmp_path, "rw-run"))
    report = build_report([boot, netsweep, probe], extras=Extras(story="field-notes",
                                                                  compare=True))
    written = write(report, tmp_path / "report", ["html"])
    (index,) = written.documents
    return index


def test_screenshot_is_not_blank(report_html: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", "--window-size=800,2000",
                    report_html.as_uri())
    assert shot.is_file(), proc.stderr[-2000:]
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.shape == (2000, 800)
    assert pixels.std() > 20  # a blank page is one grey level; this one has text and plots
    assert (pixels < 128).mean() > 0.01  # some dark ink (text, axes, lines)


def test_every_figure_loads(report_html: Path, tmp_path: Path) -> None:
    probe_copy = tmp_path / "probe.html"
    probe_copy.write_text(report_html.read_text().replace("</body>", PROBE + "</body>"))
    proc = chromium(tmp_path, "--dump-dom", "--virtual-time-budget=5000", probe_copy.as_uri())
    match = re.search(r"figures-loaded=(\d+)/(\d+)", proc.stdout)
    assert match, proc.stderr[-2000:]
    loaded, total = int(match[1]), int(match[2])
    # Boot 4 + netsweep 1 + rootwrap 1, and the story's 1, 4 and 7 (the others
    # have no runs here and show no figure).
    assert total == 8 == report_html.read_text().count("<img ")
    assert loaded == total
