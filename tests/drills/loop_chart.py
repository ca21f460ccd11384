"""The monitoring drill's chart for docs/drills.md: live ROC AUC of every day the drill has a
report for, the validation ROC AUC of the model that scored it, and the days that mattered,
as one self-contained SVG (no script, no font or file fetched)."""

from __future__ import annotations

from datetime import date
from html import escape

WIDTH, HEIGHT = 960, 360
LEFT, RIGHT, TOP, BOTTOM = 56, 24, 24, 64
LOW, HIGH = 0.80, 0.95


def timeline_svg(
    points: dict[date, tuple[float, float]], marks: dict[date, str]
) -> str:
    """``points``: day -> (live ROC AUC, the scoring model's validation ROC AUC);
    ``marks``: day -> label, drawn as a vertical line."""
    days = sorted(points)
    first, last = days[0], days[-1]
    span = max((last - first).days, 1)

    def x(day: date) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (day - first).days / span

    def y(value: float) -> float:
        value = min(max(value, LOW), HIGH)
        return TOP + (HEIGHT - TOP - BOTTOM) * (HIGH - value) / (HIGH - LOW)

    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">'
        ),
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    for tick in (0.80, 0.85, 0.90, 0.95):
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}" stroke="#ddd"/><text x="{LEFT - 8}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{tick:.2f}</text>'
        )
    for month in range(first.month, last.month + 1):
        day = date(first.year, month, 1)
        if first <= day <= last:
            out.append(
                f'<text x="{x(day):.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{day:%b}</text>'
            )
    for day, label in sorted(marks.items()):
        out.append(
            f'<line x1="{x(day):.1f}" x2="{x(day):.1f}" y1="{TOP}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="#c62828" stroke-dasharray="3 3"/>'
            f'<text x="{x(day) - 4:.1f}" y="{TOP + 12}" text-anchor="end" '
            f'fill="#c62828">{escape(label)}</text>'
        )

    def path(series: int, style: str) -> str:
        d = " ".join(
            f"{'M' if i == 0 or (day - days[i - 1]).days > 1 else 'L'}"
            f"{x(day):.1f},{y(points[day][series]):.1f}"
            for i, day in enumerate(days)
        )
        return f'<path d="{d}" fill="none" {style}/>'

    out.append(path(1, 'stroke="#555" stroke-dasharray="6 4"'))
    out.append(path(0, 'stroke="#1565c0" stroke-width="1.5"'))
    legend = HEIGHT - 20
    out.append(
        f'<line x1="{LEFT}" x2="{LEFT + 24}" y1="{legend}" y2="{legend}" '
        f'stroke="#1565c0" stroke-width="1.5"/><text x="{LEFT + 30}" y="{legend + 4}">'
        "live ROC AUC of the day's labelled predictions</text>"
        f'<line x1="{LEFT + 330}" x2="{LEFT + 354}" y1="{legend}" y2="{legend}" '
        f'stroke="#555" stroke-dasharray="6 4"/><text x="{LEFT + 360}" y="{legend + 4}">'
        "validation ROC AUC of the model that scored the day</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"
