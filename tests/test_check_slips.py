"""Worksheets with planted slips, each with its answer key: every verdict, cause and original
slip must be what the key says (zero misclassifications). The worksheets are in
tests/worksheets/, on Mazur's 2-2-2 network (src/chainrule/examples/mazur-2-2-2.toml), in the
post's own names through the network's [aliases]."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainrule.explain.worksheet import check_worksheet

SHEETS = Path(__file__).parent / "worksheets"

# file -> {name as written: (verdict, causes as written, original slips, marks)}
ANSWER_KEYS = {
    "slip-arithmetic": {
        "net_h1": ("correct",),
        "out_h1": ("correct",),
        "net_o1": ("wrong", [], []),
        "out_o1": ("wrong", ["net_o1"], ["net_o1"]),
        "E_o1": ("wrong", ["out_o1"], ["net_o1"]),
    },
    "slip-early-rounding": {
        "out_h1": ("correct",),
        "out_h2": ("correct",),
        "net_o1": ("rounding",),
        "dE_total/dnet_o1": ("correct",),
        "dE_total/dw5": ("rounding",),  # 0.1385 x 0.59 through the unwritten dnet_o1/dw5
    },
    "slip-truncation": {
        "out_h1": ("wrong", [], []),  # 0.5932 for 0.59327: truncated, 0.7 units in its last place
        "out_h2": ("correct",),
        "net_o1": ("rounding",),  # off by out_h2's honest rounding; out_h1's error moves it 0.00003
    },
    "slip-poisoned-upstream": {
        "out_h1": ("wrong", [], []),
        "out_h2": ("correct",),
        "net_o1": ("wrong", ["out_h1"], ["out_h1"]),
        "out_o1": ("wrong", ["net_o1"], ["out_h1"]),
        "dE_total/dout_o1": ("wrong", ["out_o1"], ["out_h1"]),  # three steps below the slip
    },
    "slip-derivative-formula": {
        "out_o1": ("correct",),
        "dE_total/dout_o1": ("correct",),
        "dout_o1/dnet_o1": ("wrong", [], []),
        "dE_total/dnet_o1": ("wrong", ["dout_o1/dnet_o1"], ["dout_o1/dnet_o1"]),
    },
    "slip-sign": {
        "dE_total/dout_o2": ("wrong", [], [], "sign"),
        "dout_o2/dnet_o2": ("correct",),
        "dE_total/dnet_o2": ("wrong", ["dE_total/dout_o2"], ["dE_total/dout_o2"]),
    },
    "slip-missing-term": {
        "dE_total/dnet_o1": ("correct",),
        "dnet_o1/dout_h1": ("correct",),
        "dE_total/dout_h1": ("wrong", [], [], "missing term"),
    },
    "slip-fewer-digits": {
        "E_total": ("correct",),
        "out_o1": ("correct",),
        "dE_total/dw5": ("correct",),
        "w5^{new}": ("correct",),
        "w1^{new}": ("correct",),
    },
}


def _names(items: list[str]) -> list[str]:
    return [item.partition(" = ")[0] for item in items]


@pytest.mark.parametrize("sheet", sorted(ANSWER_KEYS))
def test_planted_slips_are_graded_as_the_answer_key_says(sheet):
    report = check_worksheet(SHEETS / f"{sheet}.toml")
    got = {v.label or v.name: v for v in report.verdicts}
    key = ANSWER_KEYS[sheet]
    assert set(got) == set(key)
    for name, expected in key.items():
        v = got[name]
        assert v.status == expected[0], (name, v.message())
        if v.status == "wrong":
            assert _names(v.causes) == expected[1], (name, v.message())
            assert _names(v.origins) == expected[2], (name, v.message())
            marks = expected[3:] if len(expected) > 3 else ()
            assert v.sign_error == ("sign" in marks), name
            assert ("leaves out the chain-rule term" in v.note) == ("missing term" in marks), name
    assert report.exit_code == (1 if any(k[0] == "wrong" for k in key.values()) else 0)


def test_the_report_names_the_original_slip_and_the_sign_error():
    text = check_worksheet(SHEETS / "slip-poisoned-upstream.toml").to_text()
    assert "itself carried from the original slip out_h1 = 0.6933" in text
    assert "a sign error" in check_worksheet(SHEETS / "slip-sign.toml").to_text()
    note = check_worksheet(SHEETS / "slip-missing-term.toml").verdicts[-1].note
    assert "leaves out the chain-rule term dL/dz_{2-2} * dz_{2-2}/dy_{1-1}" in note
