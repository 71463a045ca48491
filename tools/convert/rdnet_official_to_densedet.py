"""Converts a checkpoint of the official RDNet detection / segmentation code to densedet.

    python tools/convert/rdnet_official_to_densedet.py SRC DST [--config CONFIG]

SRC: a naver-ai/rdnet checkpoint (mmdet 2.x Mask / Cascade Mask R-CNN or mmseg 0.x UperNet,
backbone wrapped as a timm ``features_only`` model: ``backbone.timm_model.dense_stages_3...``,
``backbone.norm_modules.i``). DST: an mmengine checkpoint (``state_dict`` + ``meta``) for the
matching densedet config (``configs/mask-rcnn_rdnet_coco.py``, ``configs/cascade-mask-rcnn_rdnet*``,
``configs/upernet_rdnet*``), loadable with ``load_from`` / ``tools/test.py CONFIG DST``.
The optimizer state is dropped. With ``--config``, the converted weights are loaded into the
config's model and any missing or unexpected key is an error naming the keys.
The file is written atomically (temporary file, then rename).
"""
import argparse

from densedet.apis.checkpoint_conversion import convert_checkpoint
from densedet.models.backbones.rdnet import convert_official_detseg_state_dict


def convert(src: str, dst: str, config: str = None) -> dict:
    return convert_checkpoint(src, dst, convert_official_detseg_state_dict, config)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--config', help='check that the result loads into this config\'s model')
    args = parser.parse_args(argv)
    state_dict = convert(args.src, args.dst, args.config)
    print(f'wrote {args.dst}: {len(state_dict)} tensors')


if __name__ == '__main__':
    main()
