from . import backbones, decode_heads, layers, necks  # noqa: F401  (registers the models)
from .backbones import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .decode_heads import *  # noqa: F401,F403
