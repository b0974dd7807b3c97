"""Inline SVG charts for report.html: no script, no external request, readable without colour
(every bar and point carries its number). Each function returns markup or "" when it has no data."""

from __future__ import annotations

import math

from markupsafe import Markup, escape

SEVERITY_COLOURS = {"P0": "#d93025", "P1": "#f29900", "P2": "#f6c026", "P3": "#7baaf7"}
OUTCOME_COLOURS = {"fail": "#d93025", "error": "#9334e6", "waived": "#9aa0a6", "pass": "#34a853"}
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" {_FONT}><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def _text(x: float, y: float, text: object, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(str(text))}</text>'


def _nice_ceiling(value: float) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 2.5, 5, 10) if step * magnitude >= value)


def failing_per_night(nights: list[dict]) -> Markup:
    """Stacked bars: failing findings per night by severity. `nights`: [{"label", "failing": {P0..}}]."""
    if not nights:
        return Markup("")
    width, height, left, bottom, top = 640, 220, 40, 30, 14
    plot_h = height - bottom - top
    totals = [sum(night["failing"].get(s, 0) for s in SEVERITY_COLOURS) for night in nights]
    ceiling = _nice_ceiling(max(totals) or 1)
    slot = (width - left - 10) / len(nights)
    bar = min(48.0, slot * 0.7)
    body = []
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        body.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(_text(left - 4, y + 4, round(ceiling * fraction), "end", 'fill="#666"'))
    for index, (night, total) in enumerate(zip(nights, totals, strict=True)):
        x = left + slot * index + (slot - bar) / 2
        y = top + plot_h
        for severity, colour in SEVERITY_COLOURS.items():
            count = night["failing"].get(severity, 0)
            if not count:
                continue
            h = plot_h * count / ceiling
            y -= h
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(night['label'])}: {count} {severity}</title></rect>"
            )
        body.append(_text(x + bar / 2, y - 3, total, "middle", 'font-weight="600"'))
        if len(nights) <= 16 or index % math.ceil(len(nights) / 16) == 0 or index == len(nights) - 1:
            body.append(_text(x + bar / 2, height - bottom + 14, night["label"], "middle", 'fill="#444"'))
    legend_x = left
    for severity, colour in SEVERITY_COLOURS.items():
        body.append(f'<rect x="{legend_x}" y="{height - 10}" width="10" height="10" fill="{colour}"/>')
        body.append(_text(legend_x + 13, height - 1, severity))
        legend_x += 44
    return _svg(width, height, "failing findings per night by severity", body)


def heartbeat_documents(nights: list[dict], band: dict | None) -> Markup:
    """Document count per night on a log scale, over the bands of the inventory's thresholds
    (healthy expected_min..expected_max, P1 above p1_above, P0 above p0_above).
    `nights`: [{"label", "docs": n or None}]."""
    points = [night for night in nights if night.get("docs") is not None]
    if not points:
        return Markup("")
    width, height, left, bottom, top = 640, 220, 48, 24, 10
    plot_w, plot_h = width - left - 96, height - bottom - top
    highest = max([night["docs"] for night in points] + ([band["p0_above"] * 2] if band else [10]))
    log_top = math.log10(_nice_ceiling(highest))

    def y_of(value: float) -> float:
        return top + plot_h * (1 - math.log10(max(value, 1)) / log_top)

    body = []
    if band:
        zones = [
            (
                band["expected_min"],
                band["expected_max"],
                "#e6f4ea",
                f"healthy {band['expected_min']}–{band['expected_max']}",
            ),
            (band["expected_max"], band["p1_above"], "#fef7e0", "above range"),
            (band["p1_above"], band["p0_above"], "#feefe3", f"P1 >{band['p1_above']}"),
            (band["p0_above"], 10**log_top, "#fce8e6", f"P0 >{band['p0_above']}"),
        ]
        for low, high, colour, label in zones:
            y_high, y_low = y_of(high), y_of(max(low, 1))
            body.append(
                f'<rect x="{left}" y="{y_high:.1f}" width="{plot_w}" height="{y_low - y_high:.1f}" fill="{colour}"/>'
            )
            body.append(_text(left + plot_w + 4, (y_high + y_low) / 2 + 4, label, extra='fill="#555"'))
    for exponent in range(0, int(log_top) + 1):
        y = y_of(10**exponent)
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ccc" stroke-dasharray="2,3"/>'
        )
        body.append(_text(left - 4, y + 4, f"{10**exponent:,}", "end", 'fill="#666"'))
    step = plot_w / max(len(nights), 1)
    coordinates, marks = [], []
    for index, night in enumerate(nights):
        x = left + step * (index + 0.5)
        if night.get("docs") is None:
            continue
        y = y_of(night["docs"])
        coordinates.append(f"{x:.1f},{y:.1f}")
        marks.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#1a73e8"><title>{escape(night["label"])}: '
            f"{night['docs']:,} documents</title></circle>"
        )
        marks.append(_text(x, y - 7, f"{night['docs']:,}", "middle", 'font-weight="600"'))
        marks.append(_text(x, height - 6, night["label"], "middle", 'fill="#444"'))
    if len(coordinates) > 1:
        body.append(f'<polyline points="{" ".join(coordinates)}" fill="none" stroke="#1a73e8" stroke-width="2"/>')
    body += marks
    return _svg(width, height, "heartbeat documents per night against the expected band", body)


def job_image_ages(jobs: list[dict]) -> Markup:
    """One horizontal bar per job: its image's age in days, coloured by tonight's outcome, with
    the expected (current) image's age as a dashed line. `jobs`: [{"job", "days", "outcome", "expected_days"}]."""
    jobs = [job for job in jobs if job.get("days") is not None]
    if not jobs:
        return Markup("")
    row, left, right, top = 16, 270, 60, 6
    width, height = 720, top + row * len(jobs) + 22
    plot_w = width - left - right
    ceiling = _nice_ceiling(max(job["days"] for job in jobs) or 1)
    body = []
    for index, job in enumerate(sorted(jobs, key=lambda job: (-job["days"], job["job"]))):
        y = top + row * index
        w = plot_w * job["days"] / ceiling
        name = job["job"] if len(job["job"]) <= 44 else job["job"][:43] + "…"
        body.append(_text(left - 6, y + 11, name, "end"))
        body.append(
            f'<rect x="{left}" y="{y + 2}" width="{max(w, 1):.1f}" height="{row - 4}" '
            f'fill="{OUTCOME_COLOURS.get(job["outcome"], "#9aa0a6")}"><title>{escape(job["job"])}: '
            f"{job['days']} days ({escape(job['outcome'])})</title></rect>"
        )
        body.append(_text(left + w + 4, y + 11, f"{job['days']} d"))
    expected = {job["expected_days"] for job in jobs if job.get("expected_days") is not None}
    if len(expected) == 1:
        (days,) = expected
        x = left + plot_w * days / ceiling
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - 18}" stroke="#1a73e8" stroke-dasharray="4,3"/>'
        )
        body.append(_text(x, height - 6, f"current image: {days} d", "middle", 'fill="#1a73e8"'))
    body.append(_text(width - right, height - 6, f"{ceiling} days", "end", 'fill="#666"'))
    return _svg(width, height, "image age of each job, in days", body)
