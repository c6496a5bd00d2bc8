"""Data sources (bundled sample, files, SQL), schema and export."""
