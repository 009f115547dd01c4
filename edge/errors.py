"""User-facing errors.

Every error a person can cause (a bad path, a corrupt file, a model we cannot run) is raised
as a ZastavaError subclass with a one-line message saying what, where and why; the CLI prints
that line and exits with the error's code instead of a traceback.
"""

from __future__ import annotations


class ZastavaError(Exception):
    """An error with a one-line message meant for the person running Zastava."""

    exit_code = 2


class SourceError(ZastavaError):
    """A frame source cannot be opened or read."""


class ModelError(ZastavaError):
    """A model file is missing, unreadable or has a layout no adapter understands."""


class RegistryError(ZastavaError):
    """A model name is unknown, or pulling it failed."""


class DatasetError(ZastavaError):
    """An evaluation dataset is missing or malformed."""
