"""A dependency-free SVG line chart, enough for the benchmark's quality-against-time plot."""

from __future__ import annotations

from html import escape

COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")


def line_plot(title: str, series: dict[str, list[tuple[float, float]]], x_label: str,
              y_label: str, width: int = 640, height: int = 400) -> str:
    """One polyline per series on shared linear axes, with a legend."""
    left, right, top, bottom = 70, 20, 40, 50
    points = [p for values in series.values() for p in values]
    x_max = max((x for x, _ in points), default=1.0) or 1.0
    y_max = max((y for _, y in points), default=1.0) or 1.0

    def sx(x: float) -> float:
        return left + (width - left - right) * x / x_max

    def sy(y: float) -> float:
        return height - bottom - (height - top - bottom) * y / y_max

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{left}" y1="{sy(0)}" x2="{width - right}" y2="{sy(0)}" stroke="black"/>',
        f'<line x1="{left}" y1="{sy(0)}" x2="{left}" y2="{top}" stroke="black"/>',
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="16" y="{height / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {height / 2})">{escape(y_label)}</text>',
    ]
    for i in range(5):
        x, y = x_max * i / 4, y_max * i / 4
        parts.append(f'<text x="{sx(x)}" y="{sy(0) + 16}" text-anchor="middle">{x:.0f}</text>')
        parts.append(f'<text x="{left - 6}" y="{sy(y) + 4}" text-anchor="end">{y:.2f}</text>')
    for index, (name, values) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        legend_y = top + 16 * index
        parts.append(f'<line x1="{width - 150}" y1="{legend_y}" x2="{width - 125}" '
                     f'y2="{legend_y}" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{width - 120}" y="{legend_y + 4}">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
