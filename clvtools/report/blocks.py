"""What a report section is made of: text, headline numbers, lists, tables and charts.

Every block carries a ``kind`` that the page template dispatches on; text is plain (the
template escapes it), so that a value from the data never becomes markup.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .figures import Chart
from .tables import Table

__all__ = ["Section", "Paragraph", "Items", "Headline", "Number", "Note", "Block"]


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text."""

    text: str
    kind: str = "paragraph"


@dataclass(frozen=True)
class Note:
    """A highlighted paragraph: a warning the reader must not miss."""

    text: str
    kind: str = "note"


@dataclass(frozen=True)
class Items:
    """A list of sentences; ``numbered`` for steps to take in order."""

    items: list[str]
    numbered: bool = False
    title: str = ""
    kind: str = "items"


@dataclass(frozen=True)
class Number:
    """One headline number: its label, the number as text, and a line of context."""

    label: str
    value: str
    detail: str


@dataclass(frozen=True)
class Headline:
    """Headline numbers shown side by side."""

    numbers: list[Number]
    kind: str = "headline"


Block = Paragraph | Note | Items | Headline | Table | Chart


@dataclass
class Section:
    """One section of the page.

    Attributes
    ----------
    id : str
        Anchor of the section (``<section id=...>``), stable for links and tests.
    title : str
    blocks : list
        Paragraphs, notes, lists, headline numbers, tables and charts, in order.
    """

    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, block: Block | None) -> None:
        """Append a block; None (a panel the run has nothing for) is left out."""
        if block is not None:
            self.blocks.append(block)
