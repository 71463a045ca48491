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
from densedet.apis.checkpoint_conversion import conversion_main
from densedet.models.backbones.rdnet import convert_official_detseg_state_dict


def main(argv=None):
    conversion_main(__doc__.splitlines()[0], convert_official_detseg_state_dict, argv)


if __name__ == '__main__':
    main()
