"""The report's figure toolkit: one house style, one way to draw and embed a chart.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg renderer and no
pyplot, so that writing a report neither switches the user's backend nor keeps figures
alive in pyplot's registry, and embedded as PNG data URIs so that the page opens offline.
Charts read tables that the run already computed: nothing here fits a model.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

__all__ = ["Chart", "draw_chart", "money_axis", "percent_axis", "log_labels", "short_number",
           "label_text",
           "PALETTE", "MONEY", "DPI", "WIDTH"]

#: Figure width in inches at :data:`DPI`: 9 in x 110 dpi = 990 px, the page's column.
WIDTH, DPI = 9.0, 110
#: Axis-label unit of money: the data's own currency, whatever it is.
MONEY = "currency units"
#: Colour-blind-safe colours (Okabe-Ito), in the order series take them.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
           "#000000")

#: Fonts that stay readable when a 990 px image is shown in a laptop's 900 px column and
#: printed on A4.
_STYLE = {
    "font.size": 11, "axes.titlesize": 13, "axes.titleweight": "bold", "axes.labelsize": 11,
    "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10,
    "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.color": "#e3e3e3", "grid.linewidth": 0.8,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE), "figure.facecolor": "white",
}


@dataclass(frozen=True)
class Chart:
    """One embedded figure.

    Attributes
    ----------
    title : str
        What the figure is (also its alt text).
    caption : str
        One sentence under it saying what it shows.
    uri : str
        ``data:image/png;base64,...``.
    kind : str
        ``"chart"``: how the page template tells blocks apart.
    """

    title: str
    caption: str
    uri: str
    kind: str = "chart"


def draw_chart(title: str, caption: str, draw: Callable[[Figure], None], *,
               height: float = 4.2, width: float = WIDTH) -> Chart:
    """Draw a figure in the house style and embed it.

    Parameters
    ----------
    title : str
        The figure's title, drawn above it and used as its alt text.
    caption : str
        The sentence under the figure.
    draw : callable
        ``draw(figure)`` adds the axes and artists to an empty figure.
    height, width : float
        Size in inches (at :data:`DPI`).
    """
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        draw(figure)
        figure.suptitle(title, fontsize=13, fontweight="bold", x=0.01, ha="left")
        lay_out(figure)
        encoded = base64.b64encode(png_bytes(figure)).decode("ascii")
    return Chart(title, caption, f"data:image/png;base64,{encoded}")


def lay_out(figure: Figure) -> None:
    """Place the axes, labels and title of ``figure`` once, then fix them.

    With its layout engine left on, ``savefig`` lays the figure out twice: in a first pass
    that draws without rendering, then again in the real draw, so each chart is measured and
    drawn twice (about half of the report's drawing time). The constrained layout measured
    here once keeps every label inside the figure (a test checks each chart's tight box).
    """
    figure.get_layout_engine().execute(figure)
    figure.set_layout_engine(None)


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG at :data:`DPI`, without the software tag (reruns are identical)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def short_number(value: float, _pos=None) -> str:
    """1234567 -> '1.2M', 12345 -> '12k', 12.5 -> '12.5'."""
    size = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def money_axis(axis) -> None:
    """Label a money axis's ticks as 12k, 1.2M."""
    axis.set_major_formatter(FuncFormatter(short_number))


def log_labels(axis, label: Callable[[float], str]) -> None:
    """Label a log axis at 1, 2 and 5 times each power of ten (matplotlib labels only the
    powers, which leaves a short axis with one or two labels)."""
    def text(value: float, _pos=None) -> str:
        if value <= 0:
            return ""
        lead = value / 10 ** np.floor(np.log10(value) + 1e-9)
        return label(value) if any(abs(lead - k) < 1e-6 for k in (1, 2, 5)) else ""
    axis.set_major_formatter(FuncFormatter(text))
    axis.set_minor_formatter(FuncFormatter(text))


def percent_axis(axis, decimals: int = 0) -> None:
    """Label an axis of shares (0 to 1) in per cent."""
    axis.set_major_formatter(FuncFormatter(lambda v, _p: f"{100 * v:.{decimals}f} %"))


def label_text(text) -> str:
    """Text from the data made safe as a matplotlib label: a ``$`` would start mathtext
    (and a stray one fail the drawing), and a label starting with ``_`` would be left out
    of a legend."""
    text = str(text).replace("$", r"\$")
    return f" {text}" if text.startswith("_") else text
