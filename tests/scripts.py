"""The project's scripts (``tools/...``) as modules for the tests.

They are programs, not a package: ``python tools/x.py`` puts the script's own folder first on the
import path (so a script may import a sibling script by name) and finds densedet installed in the
venv. :func:`load_script` imports one the same way: with its folder on the path while it is
imported, under a name of its own.
"""
import importlib.util
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_script(relpath: str):
    """The module of ``ROOT/relpath`` (e.g. ``'tools/data/make_demo_msd.py'``), imported once."""
    path = osp.join(ROOT, relpath)
    name = osp.splitext(osp.basename(path))[0]
    module = sys.modules.get(name)
    if module is not None and osp.abspath(getattr(module, '__file__', '')) == path:
        return module
    folder = osp.dirname(path)
    sys.path.insert(0, folder)  # as Python does for a script: its siblings import by name
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module
