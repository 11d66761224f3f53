"""Small server-rendered SVG charts: no script, no library, nothing from elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from partner_signals.control.inbound import Hour

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 180, 36, 22, 10


def hourly_bars(hours: Sequence[Hour]) -> Markup:
    """Events (green) and rejections (red) per hour, side by side, with the hour under
    every sixth pair and the peak on the axis. Each bar has a title for its exact count."""
    peak = max([1, *(max(h.events, h.rejections) for h in hours)])
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(hours), 1)
    bar = max(slot / 2 - 2, 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="events and rejections per hour, last 24 h" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}" '
        f'stroke="#dde1ea"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" font-size="10" text-anchor="end" fill="#6b7385">'
        f"{peak}</text>",
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" font-size="10" text-anchor="end" '
        f'fill="#6b7385">0</text>',
    ]
    for i, hour in enumerate(hours):
        x = LEFT + i * slot + 1
        label = hour.hour.strftime("%H:00")
        for offset, count, color, what in (
            (0, hour.events, "#1b7f4a", "events"),
            (bar + 1, hour.rejections, "#b3261e", "rejections"),
        ):
            height = plot_h * count / peak
            parts.append(
                f'<rect data-hour="{label}" data-kind="{what}" data-count="{count}" '
                f'x="{x + offset:.1f}" y="{TOP + plot_h - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{color}"><title>{escape(label)} UTC: {count} '
                f"{what}</title></rect>"
            )
        if i % 6 == 0 or i == len(hours) - 1:
            parts.append(
                f'<text x="{x + bar:.1f}" y="{HEIGHT - 6}" font-size="10" text-anchor="middle" '
                f'fill="#6b7385">{label}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is a number or escaped
