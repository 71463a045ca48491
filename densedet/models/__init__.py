from . import backbones, data_preprocessor, decode_heads, layers, losses, necks, segmentors  # noqa: F401  (registers the models)
from .backbones import *  # noqa: F401,F403
from .data_preprocessor import VolumeDataPreProcessor  # noqa: F401
from .decode_heads import *  # noqa: F401,F403
from .losses import SoftDiceLoss, VoxelWeightedCrossEntropyLoss  # noqa: F401
from .necks import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
