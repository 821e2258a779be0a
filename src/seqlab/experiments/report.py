"""``seqlab report DIR``: every experiment result under DIR on one self-contained HTML page."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from ..errors import SeqlabError
from .base import RESULT_FILE, _format

REPORT_FILE = "report.html"
STYLE = """body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;line-height:1.4}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.yes{color:#070}.no{color:#a00}.claim{color:#444}nav a{margin-right:1em}"""


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_format(row.get(column, '')))}</td>" for column in columns)
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(record: dict[str, Any], directory: Path) -> str:
    reproduced = record.get("reproduced")
    badge = {True: '<span class="yes">reproduced</span>', False: '<span class="no">did not reproduce</span>',
             None: ""}[reproduced]
    figures = []
    for name in record.get("figures", []):
        path = directory / name
        if path.is_file():
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            figures.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
        else:
            figures.append(f"<p>(figure {html.escape(name)} is missing)</p>")
    return (f'<section id="{html.escape(record["name"])}"><h2>{html.escape(record["title"])} {badge}</h2>'
            f'<p class="claim"><b>Claim.</b> {html.escape(record["claim"])}</p>{_table(record["rows"])}'
            f'<p><b>Found.</b> {html.escape(record["verdict"])}</p>{"".join(figures)}'
            f'<p><small>seqlab experiment {html.escape(record["name"])} --preset {html.escape(record["preset"])}: '
            f'{record["seconds"]} s on {html.escape(record["machine"])}</small></p></section>')


def build_report(directory: str | Path) -> Path:
    """Find every result.json under ``directory``, write ``directory/report.html``, return its path."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SeqlabError(f"{directory} is not a directory; give the --out directory of seqlab experiment")
    records = []
    for path in sorted(directory.rglob(RESULT_FILE)):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            keys = ("name", "title", "claim", "rows", "verdict", "preset", "seconds", "machine")
            if not isinstance(record, dict) or any(key not in record for key in keys):
                raise ValueError
        except (ValueError, UnicodeDecodeError):
            raise SeqlabError(f"{path} is not an experiment result; remove it or run the experiment again") from None
        records.append((record, path.parent))
    if not records:
        raise SeqlabError(f"no experiment results (result.json) under {directory}; "
                          "run seqlab experiment NAME --out DIR/NAME first")
    from .base import EXPERIMENTS

    order = {name: index for index, name in enumerate(EXPERIMENTS)}
    records.sort(key=lambda item: (order.get(item[0]["name"], len(order)), str(item[1])))
    nav = "".join(f'<a href="#{html.escape(record["name"])}">{html.escape(record["name"])}</a>' for record, _ in records)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>seqlab experiments</title>"
            f"<style>{STYLE}</style></head><body><h1>seqlab experiments</h1><nav>{nav}</nav>"
            + "".join(_section(record, where) for record, where in records) + "</body></html>\n")
    out = directory / REPORT_FILE
    out.write_text(page, encoding="utf-8")
    return out
