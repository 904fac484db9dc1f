"""Writing a study's report: the tables come from `inborn.tables`."""

from inborn.tables import fmt, markdown_table, write_csv

__all__ = ["fmt", "markdown_table", "write_csv"]
