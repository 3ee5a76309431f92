"""Batch reports for people: one self-contained HTML page (and its JSON) per batch."""

from cms_pipeline.reports.html import render_profile_html, write_batch_report

__all__ = ["render_profile_html", "write_batch_report"]
