"""Errors the studio raises for bad input: each message names the key, file or value."""


class StudioError(ValueError):
    """Base class for every user-facing error of the studio."""


class ScheduleError(StudioError):
    """A schedule parameter is out of its allowed range."""


class ConfigError(StudioError):
    """A config key is unknown or its value is not allowed."""


class DataError(StudioError):
    """A data file is missing, corrupt or of a shape the models cannot take."""


class UnknownNameError(StudioError, KeyError):
    """A name is not in a registry; the message lists the names that are."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])
