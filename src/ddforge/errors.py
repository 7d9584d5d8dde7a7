"""The project's own error types: every expected failure is one of these, with a message."""


class DDForgeError(Exception):
    """Base class: an error a user can act on, never an internal bug."""


class DataSourceError(DDForgeError, ValueError):
    """Raw input is missing, unreadable or malformed. The message names the file and the problem."""


class IncompatibleArtefactError(DDForgeError, ValueError):
    """An artefact (buffer, synthetic set, transform) was made for other data or another network."""


class ConfigError(DDForgeError, ValueError):
    """A parameter combination that cannot work (e.g. IPC larger than a class)."""


class NonFiniteError(DDForgeError, RuntimeError):
    """Distillation produced non-finite values repeatedly and was stopped."""
