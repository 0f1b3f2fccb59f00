"""HTML building blocks of the report: one self-contained page (inline CSS, images as data URIs, no script).

Every string that comes from data (a run id, an input URL, a video name, an error message) goes through
:func:`text` (``html.escape``); only :class:`Markup`, HTML this module built, passes through as it is.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0;
       background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 2px; } h1 small { color: #666; font-weight: normal; font-size: 14px; }
h2 { font-size: 17px; margin: 0 0 10px; border-bottom: 1px solid #e3e5e8; padding-bottom: 4px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
section { background: #fff; border: 1px solid #e3e5e8; border-radius: 6px; padding: 14px 18px; margin: 14px 0; }
nav { margin: 10px 0 2px; }
nav a { margin-right: 12px; color: #1f6fb4; text-decoration: none; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0 8px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eceef1; text-align: left; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th { background: none; color: #555; font-weight: normal; white-space: nowrap; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0 0; }
.card { background: #fff; border: 1px solid #e3e5e8; border-radius: 6px; padding: 8px 14px; min-width: 92px; }
.card b { display: block; font-size: 22px; } .card .label { color: #666; font-size: 12px; }
.card .up, .card .down, .card .muted { font-size: 13px; font-weight: 600; }
.up { color: #17803d; } .down { color: #c0392b; } .muted, .note { color: #777; }
.note { font-style: italic; margin: 4px 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #e3e5e8; }
.badge.complete { background: #d9f2e1; color: #17803d; }
img.chart { max-width: 100%; height: auto; display: block; margin: 4px 0 10px; }
table.strip td, table.strip th { border: none; padding: 2px; text-align: center; font-size: 12px; }
table.strip img { width: 100%; max-width: 256px; height: auto; display: block; image-rendering: auto; }
code { font-size: 12px; background: #f3f4f6; padding: 0 3px; border-radius: 3px; word-break: break-all; }
"""


class Markup(str):
    """HTML this module (or a caller through it) built: passed through as it is, never escaped."""


def text(value: object) -> Markup:
    """``value`` as HTML text: escaped, unless it is :class:`Markup` already."""
    return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))


def tag(name: str, body: object = "", **attributes: str | None) -> Markup:
    """``<name attr="...">body</name>``; attribute values are escaped, ``class_`` is ``class``."""
    attrs = "".join(f' {key.rstrip("_")}="{html.escape(str(value), quote=True)}"'
                    for key, value in attributes.items() if value is not None)
    return Markup(f"<{name}{attrs}>{text(body)}</{name}>")


def join(parts: Iterable[object]) -> Markup:
    return Markup("".join(text(part) for part in parts))


def image(png: bytes, alt: str, class_: str = "chart") -> Markup:
    """An ``<img>`` holding the PNG itself as a data URI."""
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return Markup(f'<img class="{html.escape(class_)}" alt="{html.escape(alt, quote=True)}" src="{source}">')


def note(message: str) -> Markup:
    """The one line a section shows where it has nothing to show."""
    return tag("p", message, class_="note")


def section(anchor: str, heading: str, *body: object) -> Markup:
    return Markup(f'<section id="{html.escape(anchor)}">{tag("h2", heading)}{join(body)}</section>')


def table(header: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[int] = (),
          class_: str | None = None) -> Markup:
    """A table; cells are escaped unless :class:`Markup`; columns ``numeric`` are right-aligned."""
    def cells(kind: str, values: Sequence[object]) -> Markup:
        return join(tag(kind, value, class_="num" if i in numeric else None) for i, value in enumerate(values))

    head = tag("tr", cells("th", header))
    return tag("table", join([head, *(tag("tr", cells("td", row)) for row in rows)]), class_=class_)


def facts(rows: Iterable[Sequence[object]], header: Sequence[str] | None = None) -> Markup:
    """A two-or-more column table of labelled values, labels in the first column."""
    body = [tag("tr", join([tag("th", row[0]), *(tag("td", value) for value in row[1:])])) for row in rows]
    head = [tag("tr", join(tag("th", name) for name in header))] if header else []
    return tag("table", join([*head, *body]), class_="facts")


def signed(change: float | None, digits: int = 1, scale: float = 100.0) -> Markup:
    """A change in points, green when up and red when down (``+3.2``); empty where there is none."""
    if change is None:
        return Markup("")
    value = scale * change
    kind = "up" if value > 0.05 else "down" if value < -0.05 else "muted"
    return tag("span", f"{value:+.{digits}f}", class_=kind)


def card(label: str, value: str, change: float | None = None) -> Markup:
    return tag("div", join([tag("b", value), tag("span", label, class_="label"), " ", signed(change)]), class_="card")


def document(title: str, heading: object, sections: Sequence[tuple[str, str, Markup]]) -> str:
    """The page: ``sections`` are ``(anchor, heading, body)``; a navigation line links them."""
    navigation = tag("nav", join(tag("a", name, href=f"#{anchor}") for anchor, name, _ in sections))
    body = join([heading, navigation, *(section(anchor, name, content) for anchor, name, content in sections)])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{tag('title', title)}"
            f"<style>{CSS}</style></head><body><main>{body}</main></body></html>\n")
