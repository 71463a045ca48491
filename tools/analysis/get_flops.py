"""Parameters and FLOPs of a config's model (or a bare densedet backbone), mmengine's counter.

    python tools/analysis/get_flops.py configs/upernet_rdnet_ade20k.py --shape 512 512
    python tools/analysis/get_flops.py configs/densenet/mask-rcnn_densenet121_fpn_1x_coco.py --shape 800 1333
    python tools/analysis/get_flops.py --backbone RDNet --arch tiny --shape 224 224

FLOPs count one multiply-add as one FLOP (mmengine / fvcore convention). Segmentors are counted
on their inference path (backbone + decode head); detectors on backbone + neck only
(``extract_feat``: the RPN / RoI heads' cost depends on the number of proposals).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.analysis import get_model_complexity_info  # noqa: E402


def complexity(model: torch.nn.Module, shape, forward=None) -> dict:
    model.eval()
    x = torch.randn(1, 3, *shape)
    if forward is not None:  # count the tensor path, without pre/post-processing
        model.forward = forward
    info = get_model_complexity_info(model, inputs=(x, ), show_table=False, show_arch=False)
    return dict(params=info['params'], flops=info['flops'])


def from_config(path: str, shape) -> dict:
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import densedet  # noqa: F401
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    if cfg.get('default_scope') == 'mmdet':
        return complexity(model, shape, forward=lambda x: model.extract_feat(x))
    return complexity(model, shape, forward=lambda x: model._forward(x))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?')
    parser.add_argument('--backbone')
    parser.add_argument('--arch')
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 512])
    args = parser.parse_args()
    if args.config:
        res, what = from_config(args.config, args.shape), args.config
    elif args.backbone:
        from mmengine.registry import MODELS

        import densedet  # noqa: F401
        kwargs = dict(type=args.backbone)
        if args.arch:
            kwargs['arch'] = args.arch
        res, what = complexity(MODELS.build(kwargs), args.shape), f'{args.backbone} {args.arch or ""}'
    else:
        parser.error('give a config or --backbone')
    print(f'{what} @ {args.shape[0]}x{args.shape[1]}: params {res["params"] / 1e6:.2f} M, '
          f'FLOPs {res["flops"] / 1e9:.1f} G')


if __name__ == '__main__':
    main()
