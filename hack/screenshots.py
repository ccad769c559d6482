"""`make screenshots`: run the demo, load its two HTML reports in headless Chromium (hack/headless_chromium.py) and
write their screenshots into docs/images/ (the whole page, and its first 1280x1000 pixels for the README), failing if
a page made a request or logged an error.

usage: python hack/screenshots.py [OUT_DIR]   (default docs/images)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from headless_chromium import load_page

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "fraud-review-assistant.html": "report-failing.png",
    "fraud-review-assistant-remediated.html": "report-remediated.png",
}


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    aigate = Path(sys.executable).with_name("aigate")
    with tempfile.TemporaryDirectory(prefix="aigate-screenshots-") as tmp:
        demo = subprocess.run(
            [str(aigate), "demo", "--quiet", "--html-dir", tmp], capture_output=True, text=True, check=False
        )
        if demo.returncode != 0:
            print(demo.stdout[-2000:], demo.stderr[-2000:], sep="\n", file=sys.stderr)
            print("screenshots: error: aigate demo failed", file=sys.stderr)
            return 1
        for page, shot in PAGES.items():
            load = load_page(Path(tmp) / page)
            if load.errors or load.requests:
                print(f"screenshots: error: {page}: {load.errors} {load.requests}", file=sys.stderr)
                return 1
            top = load_page(Path(tmp) / page, height=1000, full_page=False)
            for path, png in ((out / shot, load.screenshot), (out / shot.replace(".png", "-top.png"), top.screenshot)):
                path.write_bytes(png)
                print(f"screenshots: {path} ({len(png) // 1024} KiB) from {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images"))
