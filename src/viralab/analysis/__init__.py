"""Correlation and significance, error analysis, drift."""
