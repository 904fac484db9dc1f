"""The evaluation engine: clean and robust accuracy under attack, its resumable journal, the HRS."""
