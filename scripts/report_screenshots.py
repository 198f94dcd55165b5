#!/usr/bin/env python3
"""Screenshots of HTML reports for the README (docs/img/): each report rendered in headless Chromium by the test
harness (tests/report/browser_check.py), the top of the page cropped, scaled down and saved as a small palette PNG.

Usage: .venv/bin/python scripts/report_screenshots.py REPORT.html OUT.png [--height 900] [--scale 0.5] ...
(pairs of report and output; needs chromium and Pillow, which scripts/setup.sh installs).
"""
import argparse
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "report"))
from browser_check import render  # noqa: E402
from PIL import Image  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", help="REPORT.html OUT.png [REPORT.html OUT.png ...]")
    ap.add_argument("--height", type=int, default=900, help="CSS pixels kept from the top of the page")
    ap.add_argument("--scale", type=float, default=0.5)
    a = ap.parse_args()
    if len(a.pairs) % 2:
        ap.error("give pairs of REPORT.html OUT.png")
    for html, out in zip(a.pairs[::2], a.pairs[1::2]):
        with tempfile.TemporaryDirectory() as tmp:
            result = render(html, pathlib.Path(tmp) / "page.png", width=1200)
            if result.console_errors:
                sys.exit(f"{html}: console errors: {result.console_errors}")
            img = Image.open(result.png_path).convert("RGB")
            img = img.crop((0, 0, img.width, min(img.height, a.height)))
            img = img.resize((int(img.width * a.scale), int(img.height * a.scale)), Image.LANCZOS)
            img.quantize(colors=64).save(out, optimize=True)
        print(f"{out}: {pathlib.Path(out).stat().st_size} bytes")


if __name__ == "__main__":
    main()
