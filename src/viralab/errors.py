"""The one exception type users see as a message instead of a stack trace."""


class ViralabError(Exception):
    """A problem with the user's input, config or environment, worded for the user.

    Entry points print ``error: <message>`` and exit non-zero; anything else is a bug and keeps
    its traceback.
    """


class DataError(ViralabError):
    """Input data that cannot be used: missing file, malformed JSON, missing columns, empty."""


class ConfigError(ViralabError):
    """A config choice or value that does not exist or does not fit."""
