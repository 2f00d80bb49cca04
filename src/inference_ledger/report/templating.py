"""The Jinja2 environment the report pages render in: templates/*.html.j2 (package data),
autoescaped, every value escaped the way `html.escape` escapes it."""

from __future__ import annotations

import html
import re
from functools import cache
from importlib.resources import files

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from jinja2.ext import Extension
from markupsafe import Markup

from inference_ledger.report.render import STATUS_COLOURS, STATUS_MEANING


def _escape(value) -> Markup:
    """markupsafe writes quotes as &#34; and &#39;; the pages have always carried
    html.escape's &quot; and &#x27;, so a value is escaped here first and arrives at the
    autoescape already safe. Markup (a macro's output, an SVG chart) passes unchanged."""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value)))


class _JoinLines(Extension):
    """Templates are indented for reading; the pages they render have no line breaks between
    tags (a line break and the next line's indentation are dropped from the template source,
    so text that needs a space across lines is kept on one line)."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return re.sub(r"\n\s*", "", source)


def _pill_colours(status: str) -> tuple[str, str]:
    return STATUS_COLOURS.get(status, ("#111827", "#f3f4f6"))


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("inference_ledger.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True),
        finalize=_escape,
        undefined=StrictUndefined,
        extensions=[_JoinLines],
    )
    env.globals.update(
        css=Markup(
            files("inference_ledger.report").joinpath("templates/report.css").read_text("utf-8")
        ),
        pill_colours=_pill_colours,
        status_meaning=STATUS_MEANING,
    )
    return env


def render_page(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
