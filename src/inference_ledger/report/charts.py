"""Inline SVG bar charts (no scripts, no fonts or files fetched): grouped bars per period,
negative values below a zero line, the report's own period highlighted. Geometry uses floats;
every label and tooltip shows the exact figure it was given."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

Series = tuple[str, str, Sequence[Decimal | None]]  # name, colour, one value per category


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    exp = math.floor(math.log10(raw))
    base = raw / 10**exp
    for nice in (1, 2, 2.5, 5, 10):
        if base <= nice:
            return nice * 10**exp
    return 10 ** (exp + 1)


def _tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:,.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class _Plot:
    """Where the bars go: the plot area inside the chart and the value range of its axis."""

    left: int
    top: int
    width: float
    height: float
    lo: float  # the lowest and highest ticks
    hi: float
    step: float

    def y(self, v: float) -> float:
        return self.top + (self.hi - v) / (self.hi - self.lo) * self.height


def _value_range(vals: list[float]) -> tuple[float, float, float]:
    """(lowest tick, highest tick, tick step) for the values and zero."""
    lo, hi = min([0.0, *vals]), max([0.0, *vals])
    if hi == lo:
        hi = lo + 1.0
    # Room for the value labels above positive bars and below negative ones.
    span = hi - lo
    hi, lo = (hi + 0.06 * span if hi > 0 else hi), (lo - 0.1 * span if lo < 0 else lo)
    step = _nice_step((hi - lo) / 5)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str,
    scale: Decimal = Decimal(1),
    label: Callable[[Decimal], str],
    highlight: str | None = None,
    chart_id: str = "chart",
    width: int = 630,
    height: int = 290,
) -> str:
    """`scale` divides values for the axis (e.g. 1e6 for $M); `label` formats exact values."""
    left, right, top, bottom = 70, 14, 44, 46
    vals = [float(v / scale) for _, _, vs in series for v in vs if v is not None]
    plot = _Plot(left, top, width - left - right, height - top - bottom, *_value_range(vals))
    group_w = plot.width / max(len(categories), 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{html.escape(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{html.escape(chart_id)}-title">',
        f'<title id="{html.escape(chart_id)}-title">{html.escape(title)}</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="18" class="ct">{html.escape(title)}</text>',
    ]
    if highlight in categories:
        i = list(categories).index(highlight)
        out.append(
            f'<rect x="{left + i * group_w:.1f}" y="{top - 6}" width="{group_w:.1f}" '
            f'height="{plot.height + 6}" fill="#fef3c7"/>'
        )
    out += _grid(plot, width - right)
    out.append(
        f'<text x="14" y="{top + plot.height / 2:.1f}" class="ax" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot.height / 2:.1f})">{html.escape(unit)}</text>'
    )
    out += _bars(plot, categories, series, scale, label, highlight)
    out += _legend(series, left, height)
    out.append("</svg>")
    return "".join(out)


def _grid(plot: _Plot, right_x: int) -> list[str]:
    """A line and a label per tick, the zero line darker."""
    out = []
    k = 0
    while plot.lo + k * plot.step <= plot.hi + plot.step / 1000:
        v = plot.lo + k * plot.step
        yy = plot.y(v)
        colour = "#9ca3af" if abs(v) < plot.step / 1000 else "#e5e7eb"
        out.append(
            f'<line x1="{plot.left}" x2="{right_x}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{colour}"/>'
        )
        out.append(
            f'<text x="{plot.left - 6}" y="{yy + 4:.1f}" class="ax" text-anchor="end">{_tick(v)}</text>'
        )
        k += 1
    return out


def _bars(
    plot: _Plot,
    categories: Sequence[str],
    series: Sequence[Series],
    scale: Decimal,
    label: Callable[[Decimal], str],
    highlight: str | None,
) -> list[str]:
    """Each category's group of bars (labelled when there is room) and its name under them."""
    group_w = plot.width / max(len(categories), 1)
    bar_w = min(34.0, group_w * 0.74 / max(len(series), 1))
    zero = plot.y(0.0)
    show_values = group_w / max(len(series), 1) >= 34
    out = []
    for i, cat in enumerate(categories):
        gx = plot.left + i * group_w + (group_w - bar_w * len(series)) / 2
        for j, (name, colour, vs) in enumerate(series):
            v = vs[i]
            if v is None:
                continue
            fv = float(v / scale)
            yv = plot.y(fv)
            x = gx + j * bar_w
            h = abs(zero - yv)
            out.append(
                f'<rect x="{x:.1f}" y="{min(yv, zero):.1f}" width="{bar_w - 2:.1f}" '
                f'height="{max(h, 0.8):.1f}" fill="{colour}"><title>{html.escape(cat)} '
                f"{html.escape(name)}: {html.escape(label(v))}</title></rect>"
            )
            if show_values:
                ty = yv - 4 if fv >= 0 else yv + 11
                out.append(
                    f'<text x="{x + (bar_w - 2) / 2:.1f}" y="{ty:.1f}" class="vl" '
                    f'text-anchor="middle">{html.escape(label(v))}</text>'
                )
        weight = ' font-weight="700"' if cat == highlight else ""
        out.append(
            f'<text x="{plot.left + (i + 0.5) * group_w:.1f}" y="{plot.top + plot.height + 18}" '
            f'class="ax" text-anchor="middle"{weight}>{html.escape(cat)}</text>'
        )
    return out


def _legend(series: Sequence[Series], left: int, height: int) -> list[str]:
    out = []
    lx = left
    for name, colour, _ in series:
        out.append(
            f'<rect x="{lx}" y="{height - 16}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{height - 7}" class="ax">{html.escape(name)}</text>'
        )
        lx += 24 + 7 * len(name)
    return out


def gauge(
    title: str,
    used: Decimal,
    total: Decimal,
    *,
    label: Callable[[Decimal], str],
    note: str,
    chart_id: str = "gauge",
    width: int = 630,
    height: int = 92,
) -> str:
    """A horizontal gauge: `used` of `total` filled, both labelled exactly, and a `note` (e.g.
    when it is projected to fill) under it."""
    left, right, top, bar_h = 14, 14, 30, 22
    plot_w = width - left - right
    share = 0.0 if total <= 0 else max(0.0, min(1.0, float(used / total)))
    filled = plot_w * share
    text = f"{label(used)} of {label(total)} ({share * 100:.1f}%)"
    return "".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart gauge" '
            f'id="{html.escape(chart_id)}" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-labelledby="{html.escape(chart_id)}-title">',
            f'<title id="{html.escape(chart_id)}-title">{html.escape(title)}</title>',
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
            f'<text x="{left}" y="18" class="ct">{html.escape(title)}</text>',
            f'<rect x="{left}" y="{top}" width="{plot_w}" height="{bar_h}" fill="#e5e7eb"/>',
            f'<rect x="{left}" y="{top}" width="{filled:.1f}" height="{bar_h}" fill="#b45309">'
            f"<title>{html.escape(text)}</title></rect>",
            f'<text x="{left}" y="{top + bar_h + 16}" class="ax">{html.escape(text)}</text>',
            f'<text x="{left}" y="{top + bar_h + 32}" class="ax">{html.escape(note)}</text>',
            "</svg>",
        ]
    )
