"""Render the CLI's HTML reports in headless Chromium and check what a reader would see.

The reports are single files with inline SVG charts and no script. To test them in a browser:

* render(html, png) copies the report into a temporary directory (so that anything it references beside itself
  fails to load there), injects a small test-only <script> at the top of the copy (never into the report itself)
  that records console.error calls, uncaught errors, failed resource loads and every resource the page fetched,
  and, on load, writes the bounding boxes of all `svg.chart` elements and the page height into a hidden
  <pre id="__boxes">. `chromium --headless --dump-dom` gives the DOM after the script ran; a second run takes a
  screenshot of the whole page (window height = page height, capped).
* chart_is_drawn(png, box) crops a chart out of the screenshot and checks that something coloured was drawn.

The network is blocked (every host name resolves to nothing), so a report that loads anything from elsewhere
fails the console check instead of quietly depending on a connection.
"""
from __future__ import annotations

import dataclasses
import html as html_lib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

TIMEOUT_S = 60
MAX_PAGE_HEIGHT = 8000

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Test-only: runs first (top of <head>), so it sees everything the page does afterwards.
_PROBE = r"""<script id="__probe">(function () {
  var errors = [];
  var origError = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return origError.apply(console, arguments);
  };
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && t.tagName) {
      errors.push("failed to load <" + t.tagName.toLowerCase() + ">: " + (t.currentSrc || t.src || t.href || t.data || "?"));
    } else {
      var msg = e.message || String(e.error);
      errors.push((/^Uncaught/.test(msg) ? "" : "Uncaught ") + msg + " (" + (e.filename || "") + ":" + (e.lineno || 0) + ")");
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    errors.push("Uncaught (in promise) " + String(e.reason));
  });
  window.addEventListener("load", function () {
    var out = {charts: [], errors: errors, resources: [], dpr: window.devicePixelRatio,
               page_height: Math.ceil(Math.max(document.documentElement.scrollHeight,
                                               document.body ? document.body.scrollHeight : 0))};
    var svgs = document.querySelectorAll("svg.chart");
    for (var i = 0; i < svgs.length; i++) {
      var r = svgs[i].getBoundingClientRect();
      var holder = svgs[i].id ? svgs[i] : svgs[i].closest("[id]");
      out.charts.push({id: holder ? holder.id : "", index: i, x: r.left + window.scrollX, y: r.top + window.scrollY,
                       width: r.width, height: r.height});
    }
    var res = performance.getEntriesByType("resource");
    for (var j = 0; j < res.length; j++) out.resources.push(res[j].name);
    var pre = document.createElement("pre");
    pre.id = "__boxes";
    pre.style.display = "none";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  });
})();</script>"""

_BOXES_RE = re.compile(r'<pre id="__boxes"[^>]*>(.*?)</pre>', re.S)


@dataclasses.dataclass
class RenderResult:
    console_errors: list  # of str: console errors, uncaught errors, failed or external loads
    charts: list          # of dict: id, index, x, y, width, height (CSS pixels, page coordinates)
    png_path: str
    page_height: int      # CSS pixels of the whole page
    width: int = 0        # the window width it was laid out at
    device_pixel_ratio: float = 1.0
    render_seconds: float = 0.0


def find_chromium() -> str | None:
    """Debian's `chromium` (or chromium-browser / google-chrome) on PATH; BITNET_CHROMIUM overrides."""
    env = os.environ.get("BITNET_CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _inject(html: str) -> str:
    """The page with the probe as the first thing the parser runs (after <head>, else after <html>, else first)."""
    for pattern in (r"<head\b[^>]*>", r"<html\b[^>]*>"):
        m = re.search(pattern, html, re.I)
        if m:
            return html[: m.end()] + _PROBE + html[m.end():]
    return _PROBE + html


def _base_args(chromium: str, profile: str, width: int, height: int) -> list:
    return [
        chromium, "--headless", "--disable-gpu", "--no-sandbox",
        f"--user-data-dir={profile}",
        "--disable-dev-shm-usage",           # containers often have a small /dev/shm
        "--no-first-run", "--no-default-browser-check", "--disable-extensions",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: any http(s) load fails (and is reported)
        "--force-device-scale-factor=1",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        "--enable-logging=stderr", "--v=0",
    ]


# Chromium writes page console messages to stderr as "...:INFO:CONSOLE:12] "text", source: URL (12)" (older
# versions: "INFO:CONSOLE(12)"); the console level is not in the line, so only uncaught errors are taken from here
# (console.error calls are recorded by the probe), plus network errors.
_CONSOLE_RE = re.compile(r"CONSOLE[:(]\d*\)?\]\s*(.*)")


def _stderr_errors(stderr: str, known: list) -> list:
    """Uncaught errors and network errors in Chromium's log that the probe did not already record."""
    out = []
    for line in stderr.splitlines():
        m = _CONSOLE_RE.search(line)
        if m and "Uncaught" in m.group(1):
            text = m.group(1).strip()
            quoted = re.match(r'"(.*?)", source:', text)
            message = quoted.group(1) if quoted else text
            if not any(message in k for k in known + out):
                out.append("console: " + text)
        elif "net::ERR_" in line and not any(line.strip() in k for k in out):
            out.append("network: " + line.strip())
    return out


def _run(args: list, what: str) -> subprocess.CompletedProcess:
    """Run Chromium in its own process group, so that a timeout ends its renderer and GPU processes too."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise RuntimeError(f"chromium {what} took over {TIMEOUT_S} s: {' '.join(args)}") from e
    if proc.returncode != 0:
        raise RuntimeError(f"chromium {what} exited {proc.returncode}: {' '.join(args)}\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def render(html_path, png_path, width: int = 1200, height: int | None = None,
           max_height: int = MAX_PAGE_HEIGHT, chromium: str | None = None) -> RenderResult:
    """Load the report in headless Chromium at `width` CSS pixels; screenshot the whole page (or `height`)."""
    chromium = chromium or find_chromium()
    if not chromium:
        raise RuntimeError("chromium not found (scripts/setup.sh installs it)")
    html = Path(html_path).read_text(encoding="utf-8")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bitnet_render_") as tmp:
        page = Path(tmp) / "page" / Path(html_path).name
        page.parent.mkdir()
        page.write_text(_inject(html), encoding="utf-8")
        url = page.resolve().as_uri()

        # 1: the DOM after load, with the probe's findings (a short window: the page height is then its content's).
        dom = _run(_base_args(chromium, str(Path(tmp) / "profile1"), width, 600) + ["--dump-dom", url], "--dump-dom")
        m = _BOXES_RE.search(dom.stdout)
        if not m:
            raise RuntimeError(f"the probe wrote no results (did the page load?); stderr:\n{dom.stderr[-3000:]}")
        found = json.loads(html_lib.unescape(m.group(1)))
        errors = list(found["errors"])
        for r in found["resources"]:
            if not r.startswith(("data:", "blob:")):
                errors.append(f"the page loads another resource (a report must be one self-contained file): {r}")
        errors += _stderr_errors(dom.stderr, errors)
        page_height = int(found["page_height"])

        # 2: the screenshot, with the window as tall as the page.
        shot_h = height if height else min(max(page_height, 1), max_height)
        png = Path(png_path)
        png.parent.mkdir(parents=True, exist_ok=True)
        shot = _run(_base_args(chromium, str(Path(tmp) / "profile2"), width, shot_h) + [f"--screenshot={png.resolve()}", url],
                    "--screenshot")
        errors += _stderr_errors(shot.stderr, errors)
        if not png.exists():
            raise RuntimeError(f"chromium wrote no screenshot; stderr:\n{shot.stderr[-3000:]}")
    return RenderResult(console_errors=errors, charts=found["charts"], png_path=str(png), page_height=page_height,
                        width=width, device_pixel_ratio=float(found.get("dpr") or 1.0),
                        render_seconds=time.monotonic() - start)


def chart_is_drawn(png_path, box: dict, dpr: float = 1.0, min_colours: int = 6, min_ink: float = 0.01,
                   min_coloured: float = 0.001, background_tolerance: int = 16,
                   colour_saturation: int = 60) -> tuple:
    """Is there a drawn chart at `box` (CSS pixels) of the screenshot?  Returns (ok, detail).

    Drawn means: at least `min_colours` distinct colours; at least `min_ink` of the pixels differ from the
    background by more than `background_tolerance` in some channel; and at least
    `min_coloured` of the pixels are clearly coloured (max - min channel >= `colour_saturation`), i.e. a data series,
    not only gray axes, grid and text. The background is the crop's most common unsaturated colour.

    Calibration (720x340 chart, white background, at 1200 px): gray axes + grid + tick labels + title alone are
    ~1.2% ink and 0% coloured; adding two thin (1.5-2 px) loss curves gives ~2.5% ink and ~0.9% coloured; a blank
    chart is one colour. Hence the defaults of 1% ink and 0.1% coloured: a sparse but real chart passes, an empty
    frame does not.
    """
    from PIL import Image

    with Image.open(png_path) as im:
        im = im.convert("RGB")
        W, H = im.size
        x0 = math.floor(box["x"] * dpr)
        y0 = math.floor(box["y"] * dpr)
        x1 = math.ceil((box["x"] + box["width"]) * dpr)
        y1 = math.ceil((box["y"] + box["height"]) * dpr)
        name = box.get("id") or f"chart {box.get('index', '?')}"
        if box["width"] <= 0 or box["height"] <= 0:
            return False, f"{name}: empty box {box['width']}x{box['height']}"
        if x0 >= W or y0 >= H or x1 <= 0 or y1 <= 0:
            return False, f"{name}: box ({x0},{y0})-({x1},{y1}) lies outside the {W}x{H} screenshot"
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        clipped = (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1)
        crop = im.crop((cx0, cy0, cx1, cy1))
    n = crop.size[0] * crop.size[1]
    counts = {colour: c for c, colour in crop.getcolors(maxcolors=n)}
    # The background is the most common unsaturated colour: tall bars (a decode at 57% of its roofline) can
    # cover more of the plot than the page does, and then the most common colour is a data series.
    plain = {c: k for c, k in counts.items() if max(c) - min(c) < colour_saturation}
    background = max(plain or counts, key=(plain or counts).get)
    br, bg, bb = background
    ink = 0
    coloured = 0
    for (r, g, b), c in counts.items():
        if max(abs(r - br), abs(g - bg), abs(b - bb)) > background_tolerance:
            ink += c
            if max(r, g, b) - min(r, g, b) >= colour_saturation:
                coloured += c
    detail = (f"{name}: {crop.size[0]}x{crop.size[1]} px{' (clipped)' if clipped else ''}, {len(counts)} colours, "
              f"background #{br:02x}{bg:02x}{bb:02x}, ink {ink / n:.2%}, coloured {coloured / n:.2%}")
    problems = []
    if len(counts) < min_colours:
        problems.append(f"fewer than {min_colours} colours")
    if ink < min_ink * n:
        problems.append(f"under {min_ink:.0%} ink")
    if coloured < min_coloured * n:
        problems.append(f"under {min_coloured:.1%} coloured pixels (no data series?)")
    if problems:
        return False, detail + ": " + "; ".join(problems)
    return True, detail
