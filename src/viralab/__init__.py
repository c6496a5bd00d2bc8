"""viralab: experiment tracking for short-video preference models and stats forecasters."""

__version__ = "0.1.0"
