"""A small self-contained HTML report: headings, text, tables and the PNGs beside it.

Readable without Python: plain HTML with relative links to the images, one inline style sheet.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Section", "write_report"]

_STYLE = """
body { font-family: sans-serif; max-width: 70em; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
"""


@dataclass
class Section:
    """One heading with its paragraphs, tables and images, in that order."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[Sequence[str], Sequence[Sequence[object]]]] = field(default_factory=list)
    images: list[str | os.PathLike] = field(default_factory=list)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def write_report(path: str | os.PathLike, title: str, sections: Sequence[Section]) -> str:
    """Write ``path`` (HTML); images are linked relative to its folder. Returns the path."""
    from xrfdask.io.atomic import atomic_output

    folder = Path(path).resolve().parent
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(t)}</p>" for t in section.text]
        for header, rows in section.tables:
            parts.append("<table><tr>" + "".join(f"<th>{_cell(h)}</th>" for h in header) + "</tr>")
            parts += [
                "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows
            ]
            parts.append("</table>")
        for image in section.images:
            rel = os.path.relpath(Path(image).resolve(), folder).replace(os.sep, "/")
            name = html.escape(Path(image).name)
            parts.append(
                f'<figure><img src="{html.escape(rel)}" alt="{name}">'
                f"<figcaption>{name}</figcaption></figure>"
            )
    parts.append("</body></html>")
    with atomic_output(path, overwrite=True) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    return os.fspath(path)
