"""Server-rendered SVG charts: no chart library, no script, styled by dashboard.css classes."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True)
class BarPoint:
    label: str  # under the bar (only some are printed when there are many)
    value: int
    title: str  # the tooltip and accessible name: '03 Nov: $1,204.00'


def _nice_ceiling(value: int) -> int:
    """The axis maximum: 1, 2 or 5 times a power of ten, at or above the largest bar."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    points: list[BarPoint],
    *,
    label: str,
    axis_format=str,
    width: int = 720,
    height: int = 200,
) -> Markup:
    """Vertical bars with three gridlines; every bar carries a <title> for hover and readers."""
    top, bottom, left = 10, 24, 64
    plot_w, plot_h = width - left - 8, height - top - bottom
    ceiling = _nice_ceiling(max((p.value for p in points), default=0))
    # plain f-strings: every text is escaped as Markup.format would, at a fraction of its cost
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">'
    ]
    for fraction in (0, 0.5, 1):
        y = f"{top + plot_h * (1 - fraction):.1f}"
        parts.append(
            f'<line class="gridline" x1="{left}" x2="{width - 8}" y1="{y}" y2="{y}"/>'
            f'<text class="axis-label" x="{left - 8}" y="{float(y) + 4:.1f}" text-anchor="end">'
            f"{escape(axis_format(int(ceiling * fraction)))}</text>"
        )
    count = max(len(points), 1)
    slot = plot_w / count
    bar_w = max(slot * 0.68, 1.5)
    label_every = max(1, round(count / 8))
    for index, point in enumerate(points):
        bar_h = max(plot_h * point.value / ceiling, 0.0)
        x = left + index * slot + (slot - bar_w) / 2
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar_w:.1f}" '
            f'height="{bar_h:.1f}" rx="2"><title>{escape(point.title)}</title></rect>'
        )
        # counted back from the newest bar, so today is always labelled and none overlap
        if (count - 1 - index) % label_every == 0:
            parts.append(
                f'<text class="axis-label" x="{x + bar_w / 2:.1f}" y="{height - 6}" '
                f'text-anchor="middle">{escape(point.label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def proportion_bar(value: int, total: int, tone: str) -> Markup:
    """One horizontal bar showing value/total (payments by status)."""
    share = 0.0 if total <= 0 else min(value / total, 1.0)
    return Markup(  # noqa: S704 - the tone is escaped, the width a number
        '<svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">'
        '<rect class="track" x="0" y="0" width="100" height="10" rx="5"/>'
        f'<rect class="fill--{escape(tone)}" x="0" y="0" width="{share * 100:.2f}" height="10" '
        'rx="5"/></svg>'
    )
