"""The errors densedet raises for bad user input: data, configs, arguments and checkpoints.

Every one derives from :class:`DensedetError`, so the tools (``densedet.apis.cli.run_tool``) print
any of them as one line and exit 1, whichever module raised it. Each also derives from the
built-in exception a caller would expect (``ValueError``, ``FileNotFoundError``, ``KeyError``,
...), so ``except ValueError`` and mmengine's registry, which re-raises a build error as
``type(error)(message)``, keep working. Each takes one argument, the message, which names the file,
key or argument at fault.
"""
import pickle


class DensedetError(Exception):
    """Base of densedet's user-input errors."""

    def __str__(self):  # KeyError would quote its message
        return str(self.args[0]) if self.args else ''


class BadDataError(DensedetError, ValueError):
    """A data file whose content is wrong: labels, shapes, affines, corrupt files, annotation json."""


class DataNotFoundError(DensedetError, FileNotFoundError):
    """A file or directory that the config, the command line or a dataset description names is missing."""


class DataKeyError(DensedetError, KeyError):
    """A dataset description (``dataset.json``, ``plans.json``, ...) lacks a key it needs."""


class BadConfigError(DensedetError, ValueError):
    """A config value or tool argument that cannot work (a size, an index, a combination)."""


class ConfigKeyError(DensedetError, KeyError):
    """A config names something that does not exist (an ``arch``, a key the tool needs)."""


class BadCheckpointError(DensedetError, ValueError):
    """A checkpoint that does not fit the model (missing, unexpected or differently shaped entries)
    or holds no weights."""


class UnsafeCheckpointError(DensedetError, pickle.UnpicklingError):
    """A checkpoint whose pickle needs more than densedet's allow-list (it could run code)."""


class UnsupportedError(DensedetError, NotImplementedError):
    """An option this setup cannot run (e.g. an mmcv op that needs compiled mmcv)."""


class BadInputError(DensedetError, ValueError):
    """Inputs given to an inference tool that could not be used (none readable, wrong kind)."""


class WorkDirBusyError(DensedetError, RuntimeError):
    """A work dir (a fold, a benchmark) that another running process holds: two runs would write the
    same checkpoints and results."""
