"""The documentation page of the published tables, generated from the model."""

from __future__ import annotations

from html import escape

from skyvault.schema.tables import PUBLISHED_SCHEMAS


def _type_label(column) -> str:
    label = column.datatype
    if column.arraysize:
        label += f"[{column.arraysize}]"
    if column.xtype:
        label += f" ({column.xtype})"
    return label


def tables_markdown() -> str:
    lines = ["# Published tables", "",
             "Generated from `schema/tables.py` by `python -m skyvault.schema.docs`; "
             "do not edit by hand.", ""]
    for schema in PUBLISHED_SCHEMAS:
        lines += [f"## Schema `{schema.name}`", "", schema.description, ""]
        for table in schema.tables:
            if not table.published:
                continue
            embargo = " Rows are embargoed per program." if table.embargo else ""
            lines += [f"### `{table.qualified_name}`", "", table.description + embargo, "",
                      "| column | type | unit | UCD | description |",
                      "|---|---|---|---|---|"]
            for column in table.columns:
                name = f"**{column.name}**" if column.principal else column.name
                lines.append(
                    f"| {name} | {_type_label(column)} | {column.unit or ''} | "
                    f"{column.ucd or ''} | {column.description.replace('|', '/')} |"
                )
            lines.append("")
    return "\n".join(lines)


def tables_html() -> str:
    """An HTML fragment of the same content, for the web interface."""
    parts = []
    for schema in PUBLISHED_SCHEMAS:
        parts.append(f"<h2>{escape(schema.name)}</h2><p>{escape(schema.description)}</p>")
        for table in schema.tables:
            if not table.published:
                continue
            rows = "".join(
                f"<tr><td>{escape(c.name)}</td><td>{escape(_type_label(c))}</td>"
                f"<td>{escape(c.unit or '')}</td><td>{escape(c.ucd or '')}</td>"
                f"<td>{escape(c.description)}</td></tr>"
                for c in table.columns
            )
            parts.append(
                f'<h3 id="{escape(table.qualified_name)}">{escape(table.qualified_name)}</h3>'
                f"<p>{escape(table.description)}</p><table><thead><tr><th>column</th>"
                f"<th>type</th><th>unit</th><th>UCD</th><th>description</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>"
            )
    return "\n".join(parts)


if __name__ == "__main__":
    print(tables_markdown())
