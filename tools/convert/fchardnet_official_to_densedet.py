"""Converts an official FC-HarDNet checkpoint (PingoLH/FCHarDNet) to densedet.

    python tools/convert/fchardnet_official_to_densedet.py hardnet70_cityscapes_model.pkl fchardnet70.pth \
        --config configs/hardnet/fchardnet70_cityscapes.py

SRC: the official ``.pkl`` (``torch.save`` of ``{'model_state': ..., ...}``; DataParallel's ``module.``
prefix is dropped). DST: an mmengine checkpoint for the ``HarDNet`` ``'fc70'`` backbone + ``FCHarDNetHead``
configs, loadable with ``load_from`` / ``tools/test.py CONFIG DST``. With ``--config`` every key must load
into that config's model. Written atomically.
"""
import argparse

from densedet.apis.checkpoint_conversion import convert_checkpoint
from densedet.models.decode_heads import fchardnet_official_to_mmseg


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--config', help='check that the result loads into this config\'s model')
    args = parser.parse_args(argv)
    state_dict = convert_checkpoint(args.src, args.dst, fchardnet_official_to_mmseg, args.config)
    print(f'wrote {args.dst}: {len(state_dict)} tensors')


if __name__ == '__main__':
    main()
