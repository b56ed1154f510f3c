"""The main job as a sequence of steps (:func:`run_analysis`), each in its own module:
inputs -> timeline -> value -> risk -> targets -> KPIs. Writing files is the report's job."""
from .result import AnalysisResult
from .run import run_analysis
from .timeline import Timeline, build_timeline

__all__ = ["AnalysisResult", "Timeline", "build_timeline", "run_analysis"]
