"""Segment images with an exported model (tools/deploy/export_onnx.py): onnxruntime, numpy, OpenCV
and Pillow only (no torch, no mmcv at run time).

    python tools/deploy/infer_onnx.py MODEL.onnx INPUT [--out-dir DIR] [--opacity A]

INPUT: an image, a folder of images or a quoted glob. For a fixed-size graph each image is resized
to the model's input size, segmented, and the label map resized back (nearest); a free-size graph
(``export_onnx.py --dynamic-size``) gets the image at its own size, padded at the bottom / right to
the graph's ``size_divisor`` with its ``pad_pixel``, and the label map is cropped back. Writes
``overlays/<name>.png`` (the prediction's palette colours
blended over the image) and ``pred/<name>.png`` (palette PNG, pixel value = class index), as
tools/infer.py does; classes / palette come from the ONNX metadata.
"""
import argparse
import glob
import json
import os
import os.path as osp
import time

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image

# densedet.apis.collect_inputs does the same but importing densedet imports torch, which this
# script must run without.
SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def images_of(source):
    if osp.isdir(source):
        return sorted(osp.join(source, f) for f in os.listdir(source) if f.lower().endswith(SUFFIXES))
    return [source] if osp.isfile(source) else sorted(glob.glob(source, recursive=True))


def metadata(session):
    """The JSON metadata export_onnx.py wrote (classes, palette, size_divisor, pad_pixel)."""
    meta = {}
    for key, value in session.get_modelmeta().custom_metadata_map.items():
        try:
            meta[key] = json.loads(value)
        except ValueError:  # another tool's plain-text entry
            meta[key] = value
    return meta


def palette_of(meta, num_classes):
    if 'palette' in meta:
        return np.array(meta['palette'], np.uint8)
    return np.random.RandomState(42).randint(0, 256, (num_classes, 3)).astype(np.uint8)  # mmseg's fallback


def segment(session, img, shape, meta):
    h, w = img.shape[:2]
    fixed = all(isinstance(s, int) for s in shape)
    if fixed:
        x = cv2.resize(img, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    else:  # symbolic H / W: any multiple of size_divisor
        div = int(meta.get('size_divisor', 1))
        x = np.empty((-(-h // div) * div, -(-w // div) * div, 3), np.float32)
        x[...] = np.asarray(meta.get('pad_pixel', [0, 0, 0]), np.float32)
        x[:h, :w] = img
    logits = session.run(None, {session.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})[0][0]
    label = logits.argmax(0).astype(np.uint8)
    return cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST) if fixed else label[:h, :w]


def fail(message):
    """One line and exit 1, as densedet's tools print user errors (this script cannot import densedet)."""
    raise SystemExit(f'{osp.basename(__file__)}: error: {message}')


def open_segmentor(path):
    """An onnxruntime session of a 2D segmentor exported by export_onnx.py; one line for anything else."""
    if not osp.isfile(path):
        fail(f'model file not found: {path}')
    try:
        session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    except Exception as error:  # onnxruntime's own exception types (InvalidProtobuf, Fail, ...)
        fail(f'{path} cannot be loaded by onnxruntime: {" ".join(str(error).split())}')
    outputs = [o.name for o in session.get_outputs()]
    if outputs != ['logits']:
        fail(f'{path} has outputs {outputs}, not a segmentor\'s logits: a detector export holds only backbone + neck '
             'features (export_onnx.py), which this script cannot turn into predictions')
    if len(session.get_inputs()[0].shape) != 4:
        fail(f'{path} takes {len(session.get_inputs()[0].shape)}D input: this script segments 2D images '
             '(volume exports are one sliding window; use tools/infer_volume.py)')
    return session


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model')
    parser.add_argument('input')
    parser.add_argument('--out-dir', default='work_dirs/infer_onnx')
    parser.add_argument('--opacity', type=float, default=0.5)
    args = parser.parse_args(argv)
    session = open_segmentor(args.model)
    shape = session.get_inputs()[0].shape[2:]
    paths = images_of(args.input)
    if not paths:
        fail(f'no input found at {args.input!r}')
    for sub in ('overlays', 'pred'):
        os.makedirs(osp.join(args.out_dir, sub), exist_ok=True)
    num_classes = session.get_outputs()[0].shape[1]
    meta = metadata(session)
    palette = palette_of(meta, num_classes)
    flat = palette.ravel().tolist()[:768]
    done, failed, start = 0, [], time.perf_counter()
    for path in paths:
        img = cv2.imread(path)
        if img is None:
            failed.append(path)
            print(f'skipped {path}: not a readable image')
            continue
        label = segment(session, img, shape, meta)
        stem = osp.splitext(osp.basename(path))[0]
        color = palette[label][..., ::-1]  # palette is RGB, OpenCV writes BGR
        overlay = (img * (1 - args.opacity) + color * args.opacity).astype(np.uint8)
        cv2.imwrite(osp.join(args.out_dir, 'overlays', f'{stem}.png'), overlay)
        pred = Image.fromarray(label, mode='P')
        pred.putpalette(flat + [0] * (768 - len(flat)))
        pred.save(osp.join(args.out_dir, 'pred', f'{stem}.png'))
        done += 1
    elapsed = time.perf_counter() - start
    print(f'{done} images in {elapsed:.1f} s ({done / elapsed:.2f} images/s); outputs: {args.out_dir}')
    if failed:
        print(f'{len(failed)} input(s) skipped: ' + ', '.join(failed))
    if not done:
        fail(f'none of the {len(paths)} input(s) at {args.input!r} could be read')


if __name__ == '__main__':
    main()
