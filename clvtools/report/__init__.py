"""What people read: the files of a run (the manifest in :mod:`.outputs`) and report.html
(:mod:`.html`, one module per section in :mod:`.sections`); the Excel workbook joins here."""
from .html import render_report
from .outputs import OUTPUTS, Output, check_output_folder, write_outputs

__all__ = ["OUTPUTS", "Output", "check_output_folder", "render_report", "write_outputs"]
