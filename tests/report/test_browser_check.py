"""Self-check of the browser harness (browser_check.py) on pages written here; needs Chromium and Pillow, no CLI.

Shows that chart_is_drawn tells a blank chart (and a frame with gray axes but no data) from a drawn one, and that
render reports console errors, uncaught errors and loads from the network or from beside the page.
"""
import math

import pytest

import browser_check as bc

if bc.find_chromium() is None:
    pytest.skip("chromium not installed: scripts/setup.sh installs it", allow_module_level=True)
pytest.importorskip("PIL", reason="Pillow not installed: scripts/setup.sh installs it")

W, H = 720, 340


def _axes():
    """Gray axes, grid, tick labels and a title: what an empty chart still draws."""
    s = f'<rect width="{W}" height="{H}" fill="#fff"/>'
    s += f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14" fill="#222">Loss</text>'
    s += f'<line x1="60" y1="{H - 40}" x2="{W - 20}" y2="{H - 40}" stroke="#444"/>'
    s += f'<line x1="60" y1="30" x2="60" y2="{H - 40}" stroke="#444"/>'
    for i in range(7):
        y = H - 40 - i * (H - 70) / 6
        s += f'<line x1="60" y1="{y}" x2="{W - 20}" y2="{y}" stroke="#eee"/>'
        s += f'<text x="55" y="{y + 4}" text-anchor="end" font-size="11" fill="#555">{i * 0.5:.1f}</text>'
    for i in range(8):
        s += f'<text x="{60 + i * (W - 80) / 7}" y="{H - 25}" text-anchor="middle" font-size="11" fill="#555">{i * 5}</text>'
    return s


def _curve(scale, tau):
    return " ".join(f"{60 + i * 640 / 30:.1f},{300 - scale * math.exp(-i / tau):.1f}" for i in range(31))


def _page(extra=""):
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>harness self-check</title>
<style>body {{ font-family: sans-serif; margin: 24px; }} figure {{ margin: 0 0 24px; }}</style></head>
<body><h1>Self-check</h1>
<figure id="blank"><svg class="chart" width="{W}" height="{H}" viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg">
<rect width="{W}" height="{H}" fill="#fff"/></svg></figure>
<figure id="frame"><svg class="chart" width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg">{_axes()}</svg></figure>
<figure><svg class="chart" id="drawn" width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg">{_axes()}
<path d="M {_curve(250, 8).replace(' ', ' L ')}" fill="none" stroke="#1f77b4" stroke-width="2"/>
<path d="M {_curve(240, 9).replace(' ', ' L ')}" fill="none" stroke="#d62728" stroke-width="1.5" stroke-dasharray="4 3"/>
</svg></figure>
<p>Not a chart: <svg width="50" height="50"><circle cx="25" cy="25" r="20" fill="orange"/></svg></p>
{extra}
</body></html>
"""


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    d = tmp_path_factory.mktemp("clean")
    (d / "page.html").write_text(_page(), encoding="utf-8")
    return bc.render(d / "page.html", d / "page.png", width=1000)


def test_finds_the_charts_and_the_page(clean):
    assert clean.console_errors == []
    assert [c["id"] for c in clean.charts] == ["blank", "frame", "drawn"]  # svg.chart only; id of the svg or holder
    for c in clean.charts:
        assert (c["width"], c["height"]) == (W, H)
        assert c["x"] == 24  # body margin
    ys = [c["y"] for c in clean.charts]
    assert ys == sorted(ys) and ys[1] - ys[0] >= H
    assert clean.page_height >= ys[-1] + H
    from PIL import Image
    with Image.open(clean.png_path) as im:  # the whole page is in the screenshot, at 1 px per CSS px
        assert im.size == (1000, clean.page_height)
    assert clean.device_pixel_ratio == 1.0


def test_tells_blank_from_drawn(clean):
    blank, frame, drawn = clean.charts
    ok, detail = bc.chart_is_drawn(clean.png_path, blank)
    assert not ok and "fewer than" in detail, detail
    ok, detail = bc.chart_is_drawn(clean.png_path, frame)  # axes and labels, but no data series
    assert not ok and "coloured" in detail, detail
    ok, detail = bc.chart_is_drawn(clean.png_path, drawn)
    assert ok, detail


def test_box_outside_the_screenshot(clean):
    box = dict(clean.charts[2], y=clean.page_height + 100)
    ok, detail = bc.chart_is_drawn(clean.png_path, box)
    assert not ok and "outside" in detail, detail
    ok, detail = bc.chart_is_drawn(clean.png_path, dict(box, width=0))
    assert not ok and "empty" in detail, detail


def test_the_probe_stays_out_of_the_report(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(_page(), encoding="utf-8")
    before = page.read_text(encoding="utf-8")
    bc.render(page, tmp_path / "page.png")
    assert page.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html", "page.png"]


def test_reports_console_errors_and_external_loads(tmp_path):
    extra = """<script>console.error("x")</script>
<script>console.log("only a log")</script>
<img src="http://example.com/x.png" alt="">
<img src="beside.png" alt="">
<script>undefinedFunction()</script>"""
    page = tmp_path / "bad.html"
    page.write_text(_page(extra), encoding="utf-8")
    (tmp_path / "beside.png").write_bytes(b"")  # exists beside the report, but the rendered copy is elsewhere
    r = bc.render(page, tmp_path / "bad.png")
    text = "\n".join(r.console_errors)
    assert "console.error: x" in r.console_errors, text
    assert "only a log" not in text
    assert any("Uncaught" in e and "undefinedFunction" in e for e in r.console_errors), text
    assert any("http://example.com/x.png" in e for e in r.console_errors), text
    assert any(e.startswith("failed to load <img>") and "beside.png" in e for e in r.console_errors), text
    assert sum("undefinedFunction" in e for e in r.console_errors) == 1, text  # probe and log not both counted
    # The charts are still found and judged.
    assert [bc.chart_is_drawn(r.png_path, c)[0] for c in r.charts] == [False, False, True]


def test_stylesheet_and_font_loads_count(tmp_path):
    extra = """<link rel="stylesheet" href="https://cdn.example.net/style.css">
<div style="background-image: url(https://example.org/bg.png); width: 10px; height: 10px"></div>"""
    page = tmp_path / "ext.html"
    page.write_text(_page(extra), encoding="utf-8")
    r = bc.render(page, tmp_path / "ext.png")
    text = "\n".join(r.console_errors)
    assert "https://cdn.example.net/style.css" in text, text
    assert "https://example.org/bg.png" in text, text


def test_stderr_parsing():
    log = ('[1:1:1205/040051.090231:INFO:CONSOLE:4] "x", source: file:///a.html (4)\n'
           '[1:1:1205/040051.090231:INFO:CONSOLE(7)] "Uncaught TypeError: a is null", source: file:///a.html (7)\n'
           '[1:2:1205/040051.1:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n'
           '[1:3:1205/040051.2:ERROR:network] GET http://x/ net::ERR_NAME_NOT_RESOLVED\n')
    found = bc._stderr_errors(log, [])
    assert len(found) == 2 and "Uncaught TypeError: a is null" in found[0] and "net::ERR_" in found[1], found
    assert bc._stderr_errors(log, ["Uncaught TypeError: a is null (file:///a.html:7)"]) == found[1:]
