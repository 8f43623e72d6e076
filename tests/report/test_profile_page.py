"""The profile page: self-contained, escaped, one plot per column that has values."""

from __future__ import annotations

import base64
import re
from datetime import date
from pathlib import Path

import polars as pl

from loopline.prep import profile_table
from loopline.report import render_profile_html, write_profile_html

HOSTILE = "<script>alert('x')</script>&$\\alpha$"


def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            HOSTILE: [1.0, 2.5, None, float("nan")],
            "city": ["<b>lyon</b>", "a&b", "a&b", "$x$"],
            "n": [1, 1, 1, 1],
            "flag": [True, False, None, True],
            "day": [date(2024, 1, 1), date(2024, 2, 1), None, date(2024, 1, 1)],
        }
    )


def test_every_column_has_a_section_with_one_png_plot() -> None:
    html = render_profile_html(profile_table(frame()), title="shop v3")
    sections = re.findall(r'<section id="column-\d+">.*?</section>', html, flags=re.S)
    assert len(sections) == 5
    for section in sections:
        images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', section)
        assert len(images) == 1
        assert base64.b64decode(images[0]).startswith(b"\x89PNG")


def test_text_from_the_data_is_escaped() -> None:
    html = render_profile_html(profile_table(frame()), title="<title>&")
    assert "<script>" not in html and "<b>lyon" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;$\\alpha$" in html  # the heading, as text
    assert "&lt;b&gt;lyon&lt;/b&gt;" in html and "a&amp;b" in html
    assert "<h1>&lt;title&gt;&amp;</h1>" in html


def test_the_page_references_nothing_outside_itself() -> None:
    html = render_profile_html(profile_table(frame()))
    assert not re.search(r"(src|href)=\"(?!data:|#)", html)


def test_a_column_without_values_says_so_instead_of_a_plot() -> None:
    profile = profile_table(pl.DataFrame({"empty": pl.Series([None, None], dtype=pl.Float64), "void": [None, None]}))
    html = render_profile_html(profile)
    assert "<img" not in html and html.count("No values to plot.") == 2


def test_an_empty_table_renders() -> None:
    html = render_profile_html(profile_table(frame().clear()))
    assert "rows <b>0</b>" in html and html.count("No values to plot.") == 5


def test_write_replaces_the_file_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out" / "profile.html"
    target.parent.mkdir()
    target.write_text("old")
    assert write_profile_html(target, profile_table(frame()), title="t") == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in target.parent.iterdir()] == ["profile.html"]
