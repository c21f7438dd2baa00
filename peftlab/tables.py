"""A small table that shows as HTML in Jupyter and as aligned text elsewhere (notebooks 03 and 05)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Table:
    """A small table: HTML in Jupyter, aligned text elsewhere. Used by notebooks 03 and 05."""

    columns: Sequence[str]
    rows: list[Sequence[object]]
    title: str = ""
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        cells = [[str(c) for c in self.columns]] + [[str(v) for v in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(([self.title] if self.title else []) + lines + self.notes)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(str(c))}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td style='text-align:left'><code>{html.escape(str(v))}</code></td>" for v in row)
            + "</tr>"
            for row in self.rows
        )
        title = f"<b>{html.escape(self.title)}</b>" if self.title else ""
        notes = "".join(f"<div>{html.escape(n)}</div>" for n in self.notes)
        return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}"
