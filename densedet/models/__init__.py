from . import backbones, layers  # noqa: F401  (registers the models)
from .backbones import *  # noqa: F401,F403
