"""Markdown for the README's generated sections (``peftlab readme``, ``peftlab instructors``)."""

from __future__ import annotations


def markdown_row(cells: list[str]) -> str:
    """One row of a GitHub Markdown table: ``|`` in a cell is escaped, a newline becomes a space."""
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table (cells may hold Markdown; ``|`` is escaped)."""
    return "\n".join([markdown_row(header), "|" + "---|" * len(header), *map(markdown_row, rows)])
