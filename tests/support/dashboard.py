"""A Grafana dashboard's PromQL, as Prometheus can run it outside Grafana.

`panel_queries` gives each panel target's expression with the template variables replaced by
values that select everything (`$tenant` → `.*`, so a variable may only be used as `=~"$tenant"`)
and Grafana's built-in intervals replaced by fixed ones. `metric_names` lists the series names an
expression reads, for checking them against wfsched's catalogue and Ray's own series.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Grafana's built-in variables, as a query sent at 15 s resolution over the last hour sees them.
# `$__rate_interval` is at least four scrape intervals; 1m holds four of Prometheus's default 15 s.
BUILT_INS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
# What a variable with "All" selected reads (the dashboard's allValue): every label value.
MATCH_ALL = ".*"

# `$name`, `${name}`, `${name:format}` and the old `[[name]]`, as Grafana writes them.
_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::\w+)?\}|\$(?P<plain>\w+)|\[\[(?P<old>\w+)\]\]")
# A label matcher on a variable: label=~"$name" (or any spelling of it above).
_REGEX_MATCHER = re.compile(r'=~\s*"(?:\$\{\w+(?::\w+)?\}|\$\w+|\[\[\w+\]\])"')

_PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
)
_PROMQL_WORDS_WITH_LABELS = r"(?:by|without|on|ignoring|group_left|group_right)"


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, the ones inside collapsed rows too; rows themselves are not panels."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def variable_names(dashboard: dict[str, Any]) -> set[str]:
    return {variable["name"] for variable in dashboard.get("templating", {}).get("list", [])}


def substitute(expr: str, variables: set[str]) -> str:
    """The expression with every variable replaced; a variable used other than in `=~"$name"`,
    or one the dashboard does not define, raises ValueError (its match-all value would be wrong)."""
    for match in _VARIABLE.finditer(_REGEX_MATCHER.sub("", expr)):
        name = match["braced"] or match["plain"] or match["old"]
        if name not in BUILT_INS:
            raise ValueError(f'${name} is used other than as a regex matcher (label=~"${name}") in {expr!r}')

    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"] or match["old"]
        if name in BUILT_INS:
            return BUILT_INS[name]
        if name in variables:
            return MATCH_ALL
        raise ValueError(f"${name} is not a variable of the dashboard (in {expr!r})")

    return _VARIABLE.sub(value, expr)


def panel_queries(path: Path) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, variables substituted."""
    dashboard = json.loads(path.read_text())
    variables = variable_names(dashboard)
    return [
        (panel["title"], substitute(target["expr"], variables))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects (a plain PromQL reader, not a parser: it drops
    strings, label matchers, ranges and grouping clauses, then keeps names not called as functions)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(_PROMQL_WORDS_WITH_LABELS + r"\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", text):
        name = match[1]
        if name not in _PROMQL_WORDS and not re.fullmatch(r"(?:Inf|NaN)", name, re.IGNORECASE):
            names.add(name)
    return names
