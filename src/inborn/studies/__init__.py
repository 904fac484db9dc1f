"""Studies: many runs driven as one, ending in a report directory (markdown, CSV, PNG)."""
