"""Converts an official DLA-Up checkpoint (ucbdrive/dla ``dla34up`` ... ``DLASeg``) to densedet.

    python tools/convert/dlaup_official_to_densedet.py dla34up_cityscapes.pth dlaup_dla34.pth \
        --config configs/dla/dlaup_dla34_cityscapes.py

DST is an mmengine checkpoint for the DLA (``stem_output=True``) + ``DLAUpHead`` configs, loadable with
``load_from`` / ``tools/test.py CONFIG DST``. Left out, as they take no part in segmentation: the base's
ImageNet classifier, the never-called projections of the official trees of depth > 1, and the fixed
bilinear upsampler (mmseg resizes the logits). With ``--config`` every key must load. Written atomically.
"""
from densedet.apis.checkpoint_conversion import conversion_main
from densedet.models.decode_heads import dlaup_official_to_mmseg


def main(argv=None):
    conversion_main(__doc__.splitlines()[0], dlaup_official_to_mmseg, argv)


if __name__ == '__main__':
    main()
