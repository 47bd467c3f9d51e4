"""Screenshot a class dashboard (or any page grader writes) with headless Chromium, for the README.

    python scripts/dashboard_screenshot.py OUT_DIR/index.html dashboard.png [--width 1280] [--height 1600]

Chromium runs with a throw-away profile and everything that would reach the network turned off; the pages
load nothing anyway. Set $CHROMIUM to use a browser other than the first of chromium / chromium-browser /
google-chrome found on the PATH.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
HEADLESS_FLAGS = ("--headless", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  # Without these the shot can be taken before the page has finished painting.
                  "--run-all-compositor-stages-before-draw", "--virtual-time-budget=2000")


def find_browser() -> str:
    for name in (os.environ.get("CHROMIUM"), *BROWSERS):
        path = name and shutil.which(name)
        if path:
            return path
    raise SystemExit(f"no Chromium found (tried {', '.join(BROWSERS)}); set $CHROMIUM")


def chromium_command(browser: str, profile: str) -> list[str]:
    """The browser with a fresh profile and no network features; root needs --no-sandbox to start at all."""
    command = [browser, *HEADLESS_FLAGS, f"--user-data-dir={profile}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--no-sandbox")
    return command


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 1600, timeout: float = 60) -> None:
    with tempfile.TemporaryDirectory(prefix="grader-chromium-") as profile:
        command = chromium_command(find_browser(), profile) + [
            f"--screenshot={png.resolve()}", f"--window-size={width},{height}", page.resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not png.is_file():
        raise SystemExit(f"chromium failed ({done.returncode}): {done.stderr.strip()[-800:]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the HTML page, e.g. OUT_DIR/index.html")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1600)
    args = parser.parse_args(argv)
    if not args.page.is_file():
        raise SystemExit(f"{args.page}: no such file")
    screenshot(args.page, args.png, args.width, args.height)
    print(args.png)


if __name__ == "__main__":
    sys.exit(main())
