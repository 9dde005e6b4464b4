"""The one-page HTML report: tables, plots, settings, versions and server, in one file.

The page is self-contained (styles inline, plots embedded as PNG data), so it opens in any
browser from disk or as a mail attachment, with nothing fetched.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from .plots import plot_context
from .table import Table, error_summary, fmt_input_tokens, metric_tables, taggers_of

__all__ = ["render_html", "write_html"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em;
  border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #555; margin-top: 0; }
.warn { background: #fff4e0; border-left: 4px solid #e69500; padding: 0.5em 0.8em; }
table { border-collapse: collapse; margin: 0.6em 0; font-variant-numeric: tabular-nums; }
th, td { padding: 0.25em 0.8em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #444; } tbody tr:nth-child(even) { background: #f6f6f6; }
tr.sub td { color: #555; font-size: 0.92em; } tr.sub td:first-child { padding-left: 1.8em; }
caption { caption-side: bottom; text-align: left; color: #555; font-size: 0.85em;
  padding-top: 0.4em; max-width: 900px; white-space: normal; }
table.kv td { text-align: left; } table.kv td:first-child { color: #555; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.85em; }
ul.notes li { margin: 0.2em 0; } footer { color: #888; font-size: 0.8em; margin-top: 3em; }
"""


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = []
    for i, row in enumerate(table.rows):
        cls = ' class="sub"' if i in table.sub else ""
        cells = "".join(f"<td>{escape(cell.strip())}</td>" for cell in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    return (
        f"<h3>{escape(table.title)}</h3><table>{caption}<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>" for k, v in pairs)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def _image(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


_PLOT_CAPTIONS = {
    "roc.png": "ROC: gluon rejection against quark efficiency, with bootstrap bands and the "
    "baselines on the same jets; the y axis ends where the sample stops resolving.",
    "calibration.png": "Calibration: fraction of quark jets per bin of stated P(quark), "
    "binomial error bars; the jets in each bin below.",
    "scores.png": "Stated P(quark) of true quark and true gluon jets.",
}


def _settings(report: Mapping[str, Any]) -> list[tuple[str, Any]]:
    taggers = taggers_of(report)
    pairs: list[tuple[str, Any]] = [("jets", f"{report['n_jets']:,} from {report['source']}")]
    for name, run in taggers.items():
        prefix = f"{name}: " if len(taggers) > 1 else ""
        for key in ("models", "efforts", "templates"):
            pairs.append((f"{prefix}{key[:-1]}", ", ".join(run.get(key) or []) or "-"))
    pairs.append(("baselines on", report.get("baselines_on") or "-"))
    level, n_boot = report.get("interval_level") or 0.68, report.get("n_bootstrap") or 0
    pairs.append(("intervals", f"{level:.0%}; bootstrap with {n_boot:,} resamples"))
    return pairs


def _usage(run: Mapping[str, Any]) -> list[tuple[str, Any]]:
    u, lat = run["usage"], run["latency"]
    rec = u["per_jet_recorded"]
    estimated = " (estimated)" if u["reasoning_estimated"] else ""
    return [
        (
            "tokens per jet (as asked)",
            f"{fmt_input_tokens(rec)}, {rec['output_tokens']:,.0f} output "
            f"({rec['reasoning_tokens']:,.0f} reasoning{estimated})",
        ),
        ("paid in this run", f"{u['requests']:,} requests, ${u['cost']:.5f}"),
        ("from the cache", f"{run['cache_hits']:,} jets"),
        (
            "latency of jets asked",
            f"p50 {lat['p50']:.2f} s, p90 {lat['p90']:.2f} s ({lat['n']:,} jets)"
            if lat["n"]
            else f"none asked in this run (recorded when asked: {rec['latency']:.2f} s per jet)",
        ),
        ("answers read by", ", ".join(f"{k} {v:,}" for k, v in run["parsed_by"].items()) or "-"),
    ]


def render_html(
    report: Mapping[str, Any],
    plots: Sequence[Path] = (),
    *,
    title: str | None = None,
    extra_tables: Sequence[Table] = (),
    command: str | None = None,
) -> str:
    """The page as a string (see :func:`write_html`)."""
    taggers = taggers_of(report)
    title = title or f"Quark/gluon tagging on {report['n_jets']:,} jets"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(", ".join(taggers))} against the baselines<br>'
        + "<br>".join(escape(line) for line in plot_context(report, note=False))
        + "</p>",
    ]
    if report.get("backend_note"):
        parts.append(
            f'<p class="warn"><b>{escape(report["backend_note"])}</b>: these numbers say '
            "nothing about what a language model can do.</p>"
        )
    parts.append("<h2>Metrics</h2>")
    parts.extend(_table(t) for t in [*metric_tables(report), *extra_tables])
    parts.append("<h2>Jets without a label, and what was left out</h2><ul class=notes>")
    for name, run in taggers.items():
        prefix = f"{name}: " if len(taggers) > 1 else ""
        parts.append(f"<li>{escape(prefix + error_summary(run))}</li>")
    parts.extend(f"<li>{escape(note)}</li>" for note in report.get("notes") or [])
    parts.append("</ul>")
    if plots:
        parts.append("<h2>Plots</h2>")
        parts.extend(_image(p, _PLOT_CAPTIONS.get(p.name, p.stem)) for p in plots)
    parts.append("<h2>Settings</h2>" + _key_values(_settings(report)))
    for name, run in taggers.items():
        heading = "Usage" if len(taggers) == 1 else f"Usage: {name}"
        parts.append(f"<h2>{escape(heading)}</h2>" + _key_values(_usage(run)))
    server = report.get("server") or {}
    parts.append(
        "<h2>Server</h2>"
        + _key_values(
            [
                ("kind", server.get("description", "not recorded")),
                ("URL", ", ".join(server.get("urls") or []) or "not recorded in the results"),
            ]
        )
    )
    parts.append("<h2>Versions</h2>" + _key_values((report.get("versions") or {}).items()))
    made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    by = f" by <code>{escape(command)}</code>" if command else ""
    parts.append(f"<footer>Made {made}{by} (vibe-jet-tagging).</footer></body></html>")
    return "\n".join(parts) + "\n"


def write_html(
    report: Mapping[str, Any],
    path: str | os.PathLike[str],
    plots: Sequence[str | os.PathLike[str]] = (),
    **options: Any,
) -> Path:
    """Write the one-page report of ``report`` with ``plots`` embedded; returns the path.

    ``options``: ``title``, ``extra_tables`` (e.g. a comparison's cost table), ``command``.
    """
    path = Path(path)
    path.write_text(render_html(report, [Path(p) for p in plots], **options), encoding="utf-8")
    return path
