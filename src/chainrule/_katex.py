"""Formulas typeset in a single HTML file that works offline: KaTeX, vendored and inlined.

The KaTeX release in ``chainrule/_vendor/katex`` (version and MIT licence in its README) is
written into the page itself: the script, the stylesheet and its fonts (as ``data:`` URIs), so a
page opened from disk, e-mailed, or shown with no network typesets the same. Fonts that are not
vendored have their ``@font-face`` rules removed, so the browser never tries to fetch them.

The convention for an HTML writer:

- ``head_html()`` goes once into the page's ``<head>`` (about 0.5 MB: script, style and fonts).
- ``math(tex, fallback)`` marks one formula: ``<span class="cr-math" data-tex="...">fallback</span>``.
  On load every such element is typeset with KaTeX; its content, plain HTML written by the
  caller (``w<sub>11-1</sub>``), is what a reader sees where scripts do not run (a Jupyter
  output that does not execute scripts, a text browser). ``display=True`` typesets a centred
  display formula.
- Content added later (an interactive page's current step) is typeset by calling
  ``chainruleTypeset(element)`` in the page's own script.

A formula KaTeX cannot parse keeps its fallback, gets the class ``cr-math-error`` and is logged
with ``console.error`` (the browser tests treat any console error as a failure).

This module reads only files and the standard library: no NumPy, nothing else of chainrule.
"""

from __future__ import annotations

import base64
import functools
import html
import re
from importlib import resources

KATEX_VERSION = "0.19.1"

_TYPESET = """
(function () {
  function typeset(root) {
    var nodes = (root || document).querySelectorAll(".cr-math[data-tex]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      if (el.getAttribute("data-typeset") === "1") continue;
      try {
        // to a string first: a formula that fails leaves the element's fallback in place
        el.innerHTML = katex.renderToString(el.getAttribute("data-tex"), {
          displayMode: el.classList.contains("cr-display"),
          throwOnError: true,
          output: "htmlAndMathml"
        });
        el.setAttribute("data-typeset", "1");
      } catch (err) {
        el.classList.add("cr-math-error");
        console.error("chainrule: KaTeX could not typeset " + el.getAttribute("data-tex") + ": " + err);
      }
    }
  }
  window.chainruleTypeset = typeset;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { typeset(document); });
  } else {
    typeset(document);
  }
})();
"""


def _vendor(name: str) -> bytes:
    return resources.files("chainrule").joinpath("_vendor", "katex", name).read_bytes()


def _vendored_fonts() -> dict[str, bytes]:
    folder = resources.files("chainrule").joinpath("_vendor", "katex", "fonts")
    return {f.name: f.read_bytes() for f in folder.iterdir() if f.name.endswith(".woff2")}


def _inline_fonts(css: str, fonts: dict[str, bytes]) -> str:
    """Each ``@font-face`` rule's sources replaced by the vendored woff2 as a data URI; rules
    for fonts that are not vendored are dropped (KaTeX then falls back to a system font)."""

    def face(m: re.Match) -> str:
        rule = m.group(0)
        found = re.search(r"url\(fonts/(KaTeX_[A-Za-z0-9-]+)\.woff2\)", rule)
        if found is None or f"{found.group(1)}.woff2" not in fonts:
            return ""
        data = base64.b64encode(fonts[f"{found.group(1)}.woff2"]).decode("ascii")
        return re.sub(r"src:[^;}]*", f'src:url(data:font/woff2;base64,{data}) format("woff2")', rule)

    out = re.sub(r"@font-face\{[^}]*\}", face, css)
    if "url(fonts/" in out:  # a KaTeX release that references fonts elsewhere: fail loudly here
        raise RuntimeError("the vendored KaTeX stylesheet refers to a font file outside @font-face")
    return out


_OWN_CSS = """
.cr-math.cr-display { display: block; text-align: center; margin: 0.4em 0; }
.cr-math-error { color: #b03a2e; }
"""


@functools.lru_cache(maxsize=1)
def head_html() -> str:
    """``<style>`` and ``<script>`` elements, for the page's ``<head>``, that typeset every
    ``math(...)`` element on load with no network access. Cached: built once per process."""
    css = _inline_fonts(_vendor("katex.min.css").decode("utf-8"), _vendored_fonts())
    script = _vendor("katex.min.js").decode("utf-8")
    if "</script" in script.lower():  # would end the inline element early
        raise RuntimeError("the vendored KaTeX script contains '</script'; it cannot be inlined")
    return (
        f"<!-- KaTeX {KATEX_VERSION} (MIT licence), inlined so that the page works offline -->\n"
        f"<style>{css}{_OWN_CSS}</style>\n<script>{script}</script>\n<script>{_TYPESET}</script>\n"
    )


def math(tex: str, fallback: str | None = None, *, display: bool = False) -> str:
    """One formula for a page carrying ``head_html()``.

    ``tex``: the formula in KaTeX's subset of LaTeX math mode (no ``$`` delimiters).
    ``fallback``: HTML shown where scripts do not run (default: the TeX source, escaped); the
    caller is responsible for escaping it. Returns an HTML ``<span>`` element (string).
    """
    if not isinstance(tex, str):
        raise TypeError(f"math() needs the formula as a str, got {type(tex).__name__}")
    shown = html.escape(tex) if fallback is None else fallback
    cls = "cr-math cr-display" if display else "cr-math"
    return f'<span class="{cls}" data-tex="{html.escape(tex, quote=True)}">{shown}</span>'
