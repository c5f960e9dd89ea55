"""Errors of the vision side."""


class ModelLoadError(RuntimeError):
    """A weights file is missing or unreadable; the message names it and what to do."""
