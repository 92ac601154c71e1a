"""The HTML page in a real browser: headless Chromium renders it, the SVG is in the DOM, and a
screenshot shows a drawing (not a blank page). Skips, saying why, where no Chromium is installed
(.ci/run installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from chainrule.explain import explain_network, load_network

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def _chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium installed (apt-get install chromium); "
    "the HTML page is then only checked as text by test_explain_formats",
)


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "reference.html"
    path.write_text(explain_network(load_network(), lr=0.1).to_html(), encoding="utf-8")
    return path


def test_svg_is_in_the_rendered_dom(page, tmp_path):
    done = _run(["--dump-dom", page.as_uri()], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<svg" in dom and 'id="network"' in dom
    assert dom.count("<circle") == 6  # 3 inputs, 2 hidden units, 1 output
    assert "w_{31-1} = -0.28" in dom  # an edge labelled with its weight...
    assert "dL/dw = -0.0029" in dom  # ...and its gradient
    assert "dL/dz = 0.0212" in dom  # a unit with dL/dz


def test_screenshot_is_not_blank(page, tmp_path):
    shot = tmp_path / "shot.png"
    done = _run([f"--screenshot={shot}", "--window-size=1300,900", page.as_uri()], tmp_path)
    assert shot.exists(), done.stderr[-2000:]
    matplotlib_image = pytest.importorskip("matplotlib.image", reason="matplotlib reads the screenshot")
    pixels = matplotlib_image.imread(str(shot))[..., :3]
    assert pixels.shape[0] >= 800 and pixels.shape[1] >= 1200
    assert pixels.std() > 0.05  # a blank page has no variance
    # the drawing's region (top of the page) holds dark strokes and the unit fills
    top = pixels[:600]
    assert (top.mean(axis=2) < 0.4).mean() > 0.001
