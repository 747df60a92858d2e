"""HTML, Markdown and files: self-contained, complete, and robust to killed runs."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from osbench import results
from osbench.cli.program import main
from osbench.journal import Journal
from osbench.report import FigureOptions, build_report, html, markdown
from osbench.report.writer import write

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def image_sources(document: str) -> list[str]:
    return re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", document)


def assert_self_contained(document: str) -> None:
    """No external scripts, styles, fonts, images or links; every image inline PNG."""
    assert "<script" not in document
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", document)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:|//)", document)
    assert "<link" not in document
    sources = image_sources(document)
    assert sources, "no figures"
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_MAGIC)
        with Image.open(io.BytesIO(png)) as image:
            assert image.width > 100 and image.height > 100


def test_html_is_self_contained_and_responsive(boot: results.Run,
                                               netsweep: results.Run) -> None:
    document = html.render(build_report([boot, netsweep]))
    assert_self_contained(document)
    assert len(image_sources(document)) == 5  # 4 boot figures + 1 netsweep
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in document
    assert "max-width:100%" in document and "overflow-x:auto" in document
    assert "SIMULATED cloud, profile small-pets" in document
    assert "REAL hosts: the local namespace lab" in document
    assert "commit 0123456789ab (dirty tree)" in document
    assert '<td class="fail">FAIL</td>' in document


def test_killed_run_and_empty_case_render(killed_boot: results.Run, tmp_path: Path) -> None:
    assert killed_boot.incomplete and killed_boot.unreadable_lines == 1
    report = build_report([killed_boot])
    document = html.render(report)
    assert "INCOMPLETE RUN" in document and 'class="incomplete"' in document
    assert_self_contained(document)
    text = markdown.render(report)
    assert "**INCOMPLETE RUN**" in text
    assert "unreadable line(s)" in text
    written = write(report, tmp_path / "out", ["html", "md", "png", "svg"])
    assert [p.name for p in written.documents] == ["index.html", "report.md"]


def test_run_with_no_rows_renders(tmp_path: Path) -> None:
    """Killed before the first event: every figure says 'no data', nothing raises."""
    journal = Journal.create(tmp_path, "empty", {"scenario": {"name": "e", "kind": "boot"},
                                                 "cases": [{"case_id": "default"}]})
    journal.close()
    report = build_report([results.load(tmp_path / "empty")])
    assert len(report.plots) == 4
    texts = [t.get_text() for p in report.plots for ax in p.figure.axes for t in ax.texts]
    assert "no data" in texts
    assert "INCOMPLETE" in html.render(report)


def test_kind_without_renderer_still_gets_provenance(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "t", {"scenario": {"name": "probe", "kind": "tick"},
                                             "cases": []})
    journal.finish("completed")
    report = build_report([results.load(tmp_path / "t")])
    assert report.provenance[0].label == "probe"
    assert "No report renderer for the 'tick' kind yet" in report.sections[0].notes[0]
    assert "<img" not in html.render(report)


def test_cli_writes_report_figures_with_csv(boot: results.Run, netsweep: results.Run,
                                            tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports" / "both"
    code = main(["report", str(boot.path), str(netsweep.path), "--out", str(out),
                 "--format", "html,md,png,svg", "--dpi", "80", "--figsize", "6x4"])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [str(out / "index.html"),
                                                    str(out / "report.md")]
    names = ["boot-timeline", "boot-cdf", "boot-failures", "boot-address-family",
             "netsweep-throughput"]
    for name in names:
        for suffix in ("png", "svg", "csv"):
            assert (out / "figures" / f"{name}.{suffix}").stat().st_size > 0
    with Image.open(out / "figures" / "netsweep-throughput.png") as image:
        assert image.width == 6 * 80  # --figsize width x --dpi
    assert (out / "figures" / "boot-timeline.svg").read_text().lstrip().startswith("<?xml")
    assert (out / "tables" / "boot-outcomes.csv").read_text().startswith("run,case,status")
    text = (out / "report.md").read_text()
    for link in re.findall(r"\]\((figures/[^)]+)\)", text):
        assert (out / link).is_file(), link
    assert "](figures/boot-timeline.svg)" in text  # SVG preferred when written


def test_cli_default_out_and_user_errors(boot: results.Run, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(boot.path), "--format", "md"]) == 0
    assert capsys.readouterr().out.strip() == "reports/boot-run/report.md"
    assert (tmp_path / "reports/boot-run/figures/boot-cdf.png").is_file()  # md needs images
    assert main(["report", str(boot.path), "--format", "pdf"]) == 2
    assert "unknown format(s) pdf" in capsys.readouterr().err
    assert main(["report", str(boot.path), "--figsize", "big"]) == 2
    assert main(["report", str(tmp_path / "nope")]) == 2


def test_style_options(boot: results.Run) -> None:
    plain = build_report([boot], FigureOptions(style="plain", width_in=5, height_in=3, dpi=50))
    figure = plain.plots[1].figure  # the CDF: legend rows may add height, never width
    assert figure.get_figwidth() == 5 and figure.dpi == 50
