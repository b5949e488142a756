"""Errors a user can cause and fix.

Everything the kit raises for a user's mistake (a wrong path, an empty image
folder, a size the network cannot take, a dataset that cannot be fetched
offline) is a `KitError`. Its message names the thing and the fix; the CLI
prints it on one line and exits with status 2 instead of a traceback.
"""


class KitError(Exception):
    """A problem the user can fix; the message says how."""


class ConfigError(KitError, ValueError):
    """An experiment file or a `--set` override that does not make sense."""


class DataError(KitError, ValueError):
    """A dataset that is missing, empty, corrupt or does not fit the network."""


class ImageSizeError(KitError, ValueError):
    """An image whose size the network cannot take."""


class RunFolderError(KitError):
    """A run folder that cannot be used as it is: in use by another training, full or
    read-only, or holding checkpoints that do not restore or belong to another configuration."""


class FigureInputError(KitError):
    """A file a figure is drawn from is missing, empty or unreadable (that figure is left out)."""


class MetricNotAvailable(KitError):
    """A metric the data (or the machine) cannot give."""
