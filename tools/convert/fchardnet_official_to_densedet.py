"""Converts an official FC-HarDNet checkpoint (PingoLH/FCHarDNet) to densedet.

    python tools/convert/fchardnet_official_to_densedet.py hardnet70_cityscapes_model.pkl fchardnet70.pth \
        --config configs/hardnet/fchardnet70_cityscapes.py

SRC: the official ``.pkl`` (``torch.save`` of ``{'model_state': ..., ...}``; DataParallel's ``module.``
prefix is dropped). DST: an mmengine checkpoint for the ``HarDNet`` ``'fc70'`` backbone + ``FCHarDNetHead``
configs, loadable with ``load_from`` / ``tools/test.py CONFIG DST``. With ``--config`` every key must load
into that config's model. Written atomically.
"""
from densedet.apis.checkpoint_conversion import conversion_main
from densedet.models.decode_heads import fchardnet_official_to_mmseg


def main(argv=None):
    conversion_main(__doc__.splitlines()[0], fchardnet_official_to_mmseg, argv)


if __name__ == '__main__':
    main()
