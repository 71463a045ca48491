from . import backbones, decode_heads, layers, necks, segmentors  # noqa: F401  (registers the models)
from . import data_preprocessor, losses  # noqa: F401
from .backbones import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .decode_heads import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .data_preprocessor import VolumeDataPreProcessor  # noqa: F401
from .losses import SoftDiceLoss, VoxelWeightedCrossEntropyLoss  # noqa: F401
