"""Decide nnU-Net's largest-component post-processing on validation predictions.

    python tools/test.py CONFIG CKPT --out PRED_DIR            # the validation cases' NIfTI predictions
    python tools/analysis/decide_postprocessing.py CONFIG PRED_DIR [--out FILE]
    python tools/test.py CONFIG CKPT --cfg-options model.test_cfg.largest_component=FILE

For each foreground class, the mean Dice over the config's validation cases (``val_dataloader``)
with and without keeping only the class's largest connected component; the classes where it
improves are written to ``FILE`` (default ``PRED_DIR/postprocessing.json``), which the segmentors'
``test_cfg.largest_component`` reads (densedet/evaluation/postprocessing.py).
"""
import argparse
import os.path as osp

from mmengine.registry import DATASETS

import densedet  # noqa: F401
from densedet.apis.cli import run_tool
from densedet.apis.config import load_config
from densedet.errors import DataNotFoundError
from densedet.evaluation import decide_largest_component
from densedet.fileio import read_nifti, write_json
from densedet.transforms import map_labels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('pred_dir', help='<case_id>.nii.gz predictions (tools/test.py --out)')
    parser.add_argument('--out', help='default: PRED_DIR/postprocessing.json')
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    dataset = DATASETS.build(dict(cfg.val_dataloader.dataset.to_dict(), pipeline=[]))
    preds, gts = [], []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        path = osp.join(args.pred_dir, f'{info["case_id"]}.nii.gz')
        if not osp.isfile(path):
            raise DataNotFoundError(f'no prediction for validation case {info["case_id"]!r}: {path} '
                                    '(run tools/test.py --out)')
        preds.append(map_labels(info['case_id'], read_nifti(path, dtype=None, what='prediction'), info['label_values']))
        gts.append(map_labels(info['case_id'], read_nifti(info['seg_path'], dtype=None, what='label'),
                              info['label_values'], info.get('ignore_value')))
    decision = decide_largest_component(preds, gts, len(dataset.metainfo['classes']))
    decision['cases'] = [dataset.get_data_info(i)['case_id'] for i in range(len(dataset))]
    out = args.out or osp.join(args.pred_dir, 'postprocessing.json')
    write_json(decision, out)
    for c, d in decision['dice'].items():
        name = dataset.metainfo['classes'][int(c)]
        verdict = 'keep largest component' if int(c) in decision['largest_component'] else 'leave as is'
        print(f"{name}: Dice {100 * d['without']:.2f} as predicted, {100 * d['largest_component']:.2f} with its "
              f'largest component only -> {verdict}')
    print(f'wrote {out}')
    return decision


if __name__ == '__main__':
    run_tool(main)
