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
import os
import os.path as osp

import torch

from densedet.errors import BadCheckpointError
from densedet.models.backbones.rdnet import convert_official_detseg_state_dict
from densedet.models.utils import read_checkpoint


def check_against_config(state_dict: dict, config: str) -> None:
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import densedet  # noqa: F401
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        raise BadCheckpointError(f'converted checkpoint does not match {config}: missing {missing[:10]} '
                                 f'({len(missing)} in all), unexpected {unexpected[:10]} ({len(unexpected)} in all)')


def convert(src: str, dst: str, config: str = None) -> dict:
    state_dict = convert_official_detseg_state_dict(read_checkpoint(src))
    if config is not None:
        check_against_config(state_dict, config)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    torch.save(dict(state_dict=state_dict, meta=dict(converted_from=osp.basename(src))), tmp)
    os.replace(tmp, dst)
    return state_dict


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
