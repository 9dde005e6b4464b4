"""Evaluating tagged jets: result rows, the report, its tables, plots and HTML page.

One place owns what ``vjt evaluate``, ``vjt compare`` and ``vjt demo`` show:

- :mod:`.rows`: one jet's result as a JSON row, the JSONL file (:func:`result_row`,
  :class:`JsonlWriter`, :func:`read_rows`);
- :mod:`.evaluation`: a tagger's metrics from its rows (accuracy from the labels, AUC from the
  stated probability) and the baselines on the same jets;
- :mod:`.build`: the report (:func:`build_report`) or a comparison of runs
  (:func:`build_comparison`) and ``report.json`` (:func:`save_report`);
- :mod:`.table`: the metrics tables, and the one way each metric is written;
- :mod:`.plots`: ROC with bands, calibration, score distributions (:func:`write_plots`);
- :mod:`.html`: the one-page, self-contained HTML report (:func:`write_html`).
"""

from __future__ import annotations

from ...store.rows import ROW_FIELDS, JsonlWriter, read_rows, result_row, row_result
from .build import (
    EMULATED_NOTE,
    ERROR_KINDS,
    build_comparison,
    build_report,
    save_report,
    tagger_name,
)
from .html import write_html
from .plots import write_plots
from .table import Table, error_summary, fmt_fraction, fmt_rejection, metric_tables

__all__ = [
    "EMULATED_NOTE",
    "ERROR_KINDS",
    "ROW_FIELDS",
    "JsonlWriter",
    "Table",
    "build_comparison",
    "build_report",
    "error_summary",
    "fmt_fraction",
    "fmt_rejection",
    "metric_tables",
    "read_rows",
    "result_row",
    "row_result",
    "save_report",
    "tagger_name",
    "write_html",
    "write_plots",
]
