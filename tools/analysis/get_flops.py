"""Parameters and FLOPs of a config's model (or a bare densedet backbone), mmengine's counter.

    python tools/analysis/get_flops.py configs/upernet_rdnet_ade20k.py --shape 512 512
    python tools/analysis/get_flops.py configs/densenet/mask-rcnn_densenet121_fpn_1x_coco.py --shape 800 1333
    python tools/analysis/get_flops.py --backbone RDNet --arch tiny --shape 224 224
    python tools/analysis/get_flops.py --neck DenseFPN --in-channels 256 440 744 1040 --shape 800 1344 \
        [--neck-options fusion=weighted_sum bottom_up=True] [--num-outs 5]

Neck mode counts a neck (``FPN`` and ``DenseFPN`` side by side, unless ``--neck`` is ``FPN``) on the
feature maps a backbone with those output channels gives at strides 4/8/16/32 of ``--shape``.

FLOPs count one multiply-add as one FLOP (mmengine / fvcore convention). Segmentors are counted
on their inference path (backbone + decode head); detectors on backbone + neck only
(``extract_feat``: the RPN / RoI heads' cost depends on the number of proposals).
"""
import argparse

import torch
from mmengine.analysis import get_model_complexity_info


def complexity(model: torch.nn.Module, shape, forward=None) -> dict:
    model.eval()
    x = torch.randn(1, 3, *shape)
    if forward is not None:  # count the tensor path, without pre/post-processing
        model.forward = forward
    info = get_model_complexity_info(model, inputs=(x, ), show_table=False, show_arch=False)
    return dict(params=info['params'], flops=info['flops'])


def neck_complexity(neck_cfg: dict, in_channels, shape, strides=(4, 8, 16, 32)) -> dict:
    """Params and FLOPs of a neck on backbone maps of ``in_channels`` at ``strides`` of ``shape``."""
    from mmengine.registry import MODELS, init_default_scope

    import densedet  # noqa: F401
    init_default_scope('mmdet')
    neck = MODELS.build(neck_cfg).eval()
    feats = tuple(torch.randn(1, c, -(-shape[0] // s), -(-shape[1] // s)) for c, s in zip(in_channels, strides))
    info = get_model_complexity_info(neck, inputs=(feats, ), show_table=False, show_arch=False)
    return dict(params=info['params'], flops=info['flops'])


def _parse_value(text: str):
    import ast
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


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
    parser.add_argument('--neck', help='FPN or DenseFPN (compared with FPN)')
    parser.add_argument('--in-channels', type=int, nargs='+', default=[256, 512, 1024, 2048])
    parser.add_argument('--out-channels', type=int, default=256)
    parser.add_argument('--num-outs', type=int, default=5)
    parser.add_argument('--neck-options', nargs='*', default=[], help='key=value neck arguments')
    args = parser.parse_args()
    if args.neck:
        base = dict(in_channels=args.in_channels, out_channels=args.out_channels, num_outs=args.num_outs)
        options = dict(kv.split('=', 1) for kv in args.neck_options)
        fpn = neck_complexity(dict(type='FPN', **base), args.in_channels, args.shape)
        rows = [('FPN', fpn)]
        if args.neck != 'FPN':
            cfg = dict(type=args.neck, **base, **{k: _parse_value(v) for k, v in options.items()})
            rows.append((f'{args.neck} {" ".join(args.neck_options)}'.strip(),
                         neck_complexity(cfg, args.in_channels, args.shape)))
        for name, res in rows:
            print(f'{name} @ {args.shape[0]}x{args.shape[1]}, in {args.in_channels}: '
                  f'params {res["params"] / 1e6:.2f} M '
                  f'({res["params"] / fpn["params"]:.2f}x FPN), FLOPs {res["flops"] / 1e9:.2f} G '
                  f'({res["flops"] / fpn["flops"]:.2f}x FPN)')
        return
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
