"""What people read: the files of a run (the manifest in :mod:`.outputs`); the HTML report,
plots and the Excel workbook join here."""
from .outputs import OUTPUTS, Output, check_output_folder, write_outputs

__all__ = ["OUTPUTS", "Output", "check_output_folder", "write_outputs"]
