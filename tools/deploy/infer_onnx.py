"""Segment images or NIfTI volumes with an exported model (tools/deploy/export_onnx.py): onnxruntime,
numpy, OpenCV, Pillow and nibabel only (no torch, no mmcv at run time).

    python tools/deploy/infer_onnx.py MODEL.onnx INPUT [--out-dir DIR] [--opacity A]
    python tools/deploy/infer_onnx.py VOLUME_MODEL.onnx CASE.nii.gz|FOLDER [--out-dir DIR]

A volume export carries its plans (metadata ``volume``): each NIfTI case (a file, or the files of a
folder; nnU-Net's ``CASE_0000.nii.gz`` channel files grouped) runs through the whole pipeline of
tools/deploy/onnx_volume.py (resample, normalise, Gaussian sliding window, resample back) and is
written to ``DIR/<name>`` with the input's affine and header.

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
import re
import time

import cv2
import numpy as np
import onnx_volume
import onnxruntime as ort
from PIL import Image

# densedet.apis.collect_inputs does the same but importing densedet imports torch, which this
# script must run without.
SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
NIFTI = ('.nii.gz', '.nii')
CHANNEL_FILE = re.compile(r'^(?P<case>.+)_(?P<channel>\d{4})(?P<ext>\.nii(\.gz)?)$')  # nnU-Net: CASE_0000.nii.gz


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
    """An onnxruntime session of a segmentor exported by export_onnx.py; one line for anything else."""
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
    dims = len(session.get_inputs()[0].shape)
    if dims == 5 and onnx_volume.METADATA_KEY not in metadata(session):
        fail(f'{path} is a volume network without plans metadata ("{onnx_volume.METADATA_KEY}"): export it again '
             'with tools/deploy/export_onnx.py, which records the resampling, normalisation and window')
    if dims not in (4, 5):
        fail(f'{path} takes {dims}D input: this script segments images (4D input) and volumes (5D)')
    return session


def volume_cases(source):
    """``[(name, [channel files])]`` of a NIfTI file or a folder of them."""
    if osp.isfile(source):
        return [(osp.basename(source), [source])]
    if not osp.isdir(source):
        fail(f'no input found at {source!r}')
    files = sorted(f for f in os.listdir(source) if f.endswith(NIFTI))
    if not files:
        fail(f'{source}: no NIfTI files (.nii / .nii.gz) in this folder')
    channels = [CHANNEL_FILE.match(f) for f in files]
    if not all(channels):
        return [(f, [osp.join(source, f)]) for f in files]
    cases = {}
    for m in channels:
        cases.setdefault(m['case'] + m['ext'], []).append(osp.join(source, m.group(0)))
    return sorted(cases.items())


def segment_volumes(session, source, out_dir):
    meta = metadata(session)[onnx_volume.METADATA_KEY]
    name = session.get_inputs()[0].name

    def run(window):
        return session.run(None, {name: window})[0]

    cases = volume_cases(source)
    done, failed, start = 0, [], time.perf_counter()
    for file_name, paths in cases:
        try:
            labels, affine, header = onnx_volume.predict_case(paths, run, meta)
        except (OSError, ValueError, EOFError) as error:  # unreadable / corrupt files, wrong channel count
            failed.append(f'{paths[0]}: {error}')
            continue
        out = osp.join(out_dir, file_name)
        onnx_volume.write_labels(labels, out, affine, header)
        done += 1
        elapsed = time.perf_counter() - start
        print(f'[{done + len(failed)}/{len(cases)}] {paths[0]} -> {out} ({done / elapsed:.2f} cases/s)')
    finish(done, failed, len(cases), source, 'case')


def finish(done, failed, total, source, what):
    """Lists the inputs that could not be read; one error line when none could."""
    if failed:
        print(f'{len(failed)} {what}(s) skipped:\n  ' + '\n  '.join(failed))
    if not done:
        fail(f'none of the {total} {what}(s) at {source!r} could be read')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model')
    parser.add_argument('input')
    parser.add_argument('--out-dir', default='work_dirs/infer_onnx')
    parser.add_argument('--opacity', type=float, default=0.5)
    args = parser.parse_args(argv)
    session = open_segmentor(args.model)
    if len(session.get_inputs()[0].shape) == 5:
        return segment_volumes(session, args.input, args.out_dir)
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
    finish(done, failed, len(paths), args.input, 'input')


if __name__ == '__main__':
    main()
