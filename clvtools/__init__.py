"""clvtools: customer lifetime value, churn hazards and retention targeting from a transaction log."""
from ._version import __version__

__all__ = ["__version__"]
