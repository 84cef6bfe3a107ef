"""The overview's SVG bar chart is built with f-strings and escape(): byte for byte what building
it with Markup.format renders, text escaped (a label, a title, an axis value with markup in it)."""

from __future__ import annotations

import random

import pytest
from markupsafe import Markup

from payportal.portal.charts import BarPoint, _nice_ceiling, bar_chart, proportion_bar


def markup_format_chart(points, *, label, axis_format=str, width=720, height=200) -> Markup:
    """The chart as it was built with Markup.format (escaping every argument)."""
    top, bottom, left = 10, 24, 64
    plot_w, plot_h = width - left - 8, height - top - bottom
    ceiling = _nice_ceiling(max((p.value for p in points), default=0))
    parts = [
        Markup('<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">').format(
            width, height, label
        )
    ]
    for fraction in (0, 0.5, 1):
        y = f"{top + plot_h * (1 - fraction):.1f}"
        parts.append(
            Markup(
                '<line class="gridline" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="axis-label" x="{}" y="{:.1f}" text-anchor="end">{}</text>'
            ).format(
                left, width - 8, y, y, left - 8, float(y) + 4, axis_format(int(ceiling * fraction))
            )
        )
    count = max(len(points), 1)
    slot = plot_w / count
    bar_w = max(slot * 0.68, 1.5)
    label_every = max(1, round(count / 8))
    for index, point in enumerate(points):
        bar_h = max(plot_h * point.value / ceiling, 0.0)
        x = left + index * slot + (slot - bar_w) / 2
        parts.append(
            Markup(
                '<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" rx="2">'
                "<title>{}</title></rect>"
            ).format(x, top + plot_h - bar_h, bar_w, bar_h, point.title)
        )
        if (count - 1 - index) % label_every == 0:
            parts.append(
                Markup(
                    '<text class="axis-label" x="{:.1f}" y="{}" text-anchor="middle">{}</text>'
                ).format(x + bar_w / 2, height - 6, point.label)
            )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def series(count: int, seed: int) -> list[BarPoint]:
    rng = random.Random(seed)
    return [
        BarPoint(
            label=f"{n:02d} <Nov> & \"'",
            value=rng.choice([0, 0, 1, 7, 99, 12_345, 987_654_321]),
            title=f"{n:02d} Nov: <script>alert('{n}')</script> & $1,204.00",
        )
        for n in range(count)
    ]


@pytest.mark.parametrize("count", [0, 1, 7, 24, 30, 31])
@pytest.mark.parametrize("size", [(720, 200), (333, 97)])
def test_the_chart_is_what_markup_format_renders(count, size):
    width, height = size
    for seed in range(3):
        points = series(count, seed)
        label = 'Settled volume in <USD> & "friends", last 30 days'

        def axis(minor):
            return f"<{minor}> & 'k'"

        built = bar_chart(points, label=label, axis_format=axis, width=width, height=height)
        assert isinstance(built, Markup)
        assert built == markup_format_chart(
            points, label=label, axis_format=axis, width=width, height=height
        )


def test_text_in_the_chart_is_escaped():
    chart = bar_chart([BarPoint(label="<b>", value=5, title="<i>&")], label='"x"')
    assert "<b>" not in chart and "<i>" not in chart
    assert "&lt;b&gt;" in chart and "&lt;i&gt;&amp;" in chart and "&#34;x&#34;" in chart


def markup_format_proportion_bar(value: int, total: int, tone: str) -> Markup:
    share = 0.0 if total <= 0 else min(value / total, 1.0)
    return Markup(
        '<svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">'
        '<rect class="track" x="0" y="0" width="100" height="10" rx="5"/>'
        '<rect class="fill--{}" x="0" y="0" width="{:.2f}" height="10" rx="5"/></svg>'
    ).format(tone, share * 100)


@pytest.mark.parametrize(
    ("value", "total", "tone"),
    [(0, 0, "success"), (1, 3, "warning"), (7, 7, "danger"), (9, 4, "info"), (1, 8, '<x"&>')],
)
def test_the_proportion_bar_is_what_markup_format_renders(value, total, tone):
    built = proportion_bar(value, total, tone)
    assert isinstance(built, Markup)
    assert built == markup_format_proportion_bar(value, total, tone)
