"""Inference with a trained 2D model on images, folders, globs and videos, without a dataset.

    from densedet.apis import init_model, inference, segment_inputs
    model = init_model('configs/upernet_rdnet_ade20k.py', 'iter_160000.pth')   # or a det / volume config
    sample = inference(model, 'img.jpg')                       # SegDataSample / DetDataSample
    summary = segment_inputs(model, 'images/', out_dir='out')  # overlays + raw predictions

``init_model`` dispatches by config kind: mmseg's ``init_model`` (2D segmentation), mmdet's
``init_detector`` (detection) or :func:`~densedet.apis.init_volume_model` (volumes). The 2D
inference itself is mmseg's ``inference_model`` / mmdet's ``inference_detector`` and the overlays
are drawn by their visualizers: nothing here re-implements a pipeline.
"""
import functools
import glob
import json
import os
import os.path as osp
import time
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
from mmengine.config import Config

from densedet.engine.checkpoint import load_model_checkpoint
from densedet.errors import BadConfigError, BadInputError, DataNotFoundError

from .config import is_volume_model, load_config
from .precision import inference_autocast

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm')


def model_kind(cfg: Config) -> str:
    """'volume', 'det' or 'seg'."""
    if is_volume_model(cfg.model):
        return 'volume'
    return 'det' if cfg.get('default_scope') == 'mmdet' else 'seg'


def init_model(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu'):
    """Builds any densedet config's model with ``checkpoint`` (``model.cfg``, ``model.dataset_meta``
    set; ``model.kind`` is 'seg', 'det' or 'volume')."""
    cfg = load_config(config) if isinstance(config, str) else config
    kind = model_kind(cfg)
    if kind == 'volume':
        from .volume_inference import init_volume_model
        model = init_volume_model(cfg, checkpoint, device=device)
    elif kind == 'det':
        import mmdet.apis.inference as framework
        with strict_loading(framework, cfg):
            model = framework.init_detector(cfg, checkpoint, device=device)
    else:
        import mmseg.apis.inference as framework
        with strict_loading(framework, cfg):
            model = framework.init_model(cfg, checkpoint, device=device)
    model.kind = kind
    if getattr(model, 'dataset_meta', None) is None:  # mmseg sets it only from a checkpoint
        model.dataset_meta = {}
    meta = model.dataset_meta
    if kind == 'seg' and meta.get('classes') and not meta.get('palette'):
        # converted checkpoints often carry classes only; mmseg's visualizer needs a colour each
        meta['palette'] = np.random.RandomState(42).randint(0, 256, (len(meta['classes']), 3)).tolist()
    return model


@contextmanager
def strict_loading(framework_module, cfg: Config):
    """mmseg's ``init_model`` / mmdet's ``init_detector`` with the checkpoint loaded by
    :func:`~densedet.engine.checkpoint.load_model_checkpoint` (they call mmengine's partial
    ``load_checkpoint``: a checkpoint of another config would predict from random weights)."""
    original = framework_module.load_checkpoint
    framework_module.load_checkpoint = functools.partial(load_model_checkpoint, config=getattr(cfg, 'filename', None))
    try:
        yield
    finally:
        framework_module.load_checkpoint = original


def inference(model, img: Union[str, np.ndarray], amp: bool = False):
    """One image (a path or a BGR array) through mmseg's / mmdet's inference function; ``amp``:
    under autocast (bf16 on CPU, fp16 on CUDA, :mod:`densedet.apis.precision`)."""
    if model.kind not in ('det', 'seg'):
        raise BadConfigError('inference() takes 2D models; use densedet.apis.inference_volume for volumes')
    with inference_autocast(model, amp):
        if model.kind == 'det':
            from mmdet.apis import inference_detector
            return inference_detector(model, img)
        from mmseg.apis import inference_model
        return inference_model(model, img)


def collect_inputs(source: str) -> List[str]:
    """An image or video file, a folder (its images, sorted) or a glob pattern -> file paths."""
    if osp.isdir(source):
        files = sorted(osp.join(source, f) for f in os.listdir(source) if f.lower().endswith(IMAGE_SUFFIXES))
    elif osp.isfile(source):
        files = [source]
    else:
        files = sorted(p for p in glob.glob(source, recursive=True) if osp.isfile(p))
    if not files:
        raise DataNotFoundError(f'no input found at {source!r} (an image, a video, a folder of images or a glob)')
    return files


def _visualizer(model, opacity: float):
    """The framework's own visualizer for the model's kind, with the model's classes and palette."""
    if model.kind == 'det':
        from mmdet.visualization import DetLocalVisualizer
        vis = DetLocalVisualizer(name=f'densedet_infer_{id(model)}', alpha=opacity)
    else:
        from mmseg.visualization import SegLocalVisualizer
        vis = SegLocalVisualizer(name=f'densedet_infer_{id(model)}', alpha=opacity)
    vis.dataset_meta = model.dataset_meta
    return vis


def _draw(vis, model, img_bgr: np.ndarray, sample, score_thr: float) -> np.ndarray:
    """The overlay as a BGR image."""
    kwargs = dict(draw_gt=False, show=False)
    if model.kind == 'det':
        kwargs['pred_score_thr'] = score_thr
    vis.add_datasample('prediction', img_bgr[..., ::-1], sample, **kwargs)
    return np.ascontiguousarray(vis.get_image()[..., ::-1])


def _label_map_png(sample, palette, path: str):
    """The predicted class indices as a palette PNG (pixel value = class index)."""
    from PIL import Image
    label = sample.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
    image = Image.fromarray(label, mode='P')
    flat = [c for rgb in (palette or []) for c in rgb][:768]
    image.putpalette(flat + [0] * (768 - len(flat)))
    image.save(path)


def _test_ann_file(cfg) -> Optional[str]:
    """The annotation file of a config's test dataset (joined with its ``data_root``, as mmengine does)."""
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    while 'dataset' in dataset:  # RepeatDataset / ClassBalancedDataset wrappers
        dataset = dataset['dataset']
    ann_file = dataset.get('ann_file')
    if not ann_file:
        return None
    return ann_file if osp.isabs(ann_file) else osp.join(dataset.get('data_root') or '', ann_file)


def coco_ids(model) -> Tuple[Optional[List[int]], Dict[str, int]]:
    """The dataset's COCO ids: the category id of each class and the image id of each file name.

    Category ids come from the checkpoint (``dataset_meta['cat_ids']``, recorded by
    :class:`~densedet.datasets.CheckedCocoDataset`), else from the config's test annotation file by
    class name; image ids from that file when it is there. ``(None, {})`` when neither says."""
    meta = model.dataset_meta or {}
    cat_ids = meta.get('cat_ids')
    cat_ids = [int(i) for i in cat_ids] if cat_ids is not None else None
    ann_file = _test_ann_file(getattr(model, 'cfg', None) or {})
    image_ids = {}
    if ann_file and osp.isfile(ann_file):
        with open(ann_file) as f:
            data = json.load(f)
        image_ids = {osp.basename(im['file_name']): int(im['id']) for im in data.get('images', [])}
        by_name = {c['name']: int(c['id']) for c in data.get('categories', [])}
        classes = meta.get('classes') or ()
        if cat_ids is None and classes and all(c in by_name for c in classes):
            cat_ids = [by_name[c] for c in classes]
    return cat_ids, image_ids


def _coco_results(sample, image_id: int, score_thr: float, cat_ids: Optional[List[int]] = None) -> List[dict]:
    """COCO results-format entries (bbox xywh; segmentation RLE) for one image; ``category_id`` is
    ``cat_ids[label]`` (the class index without ``cat_ids``)."""
    import pycocotools.mask as mask_util
    pred = sample.pred_instances
    keep = pred.scores >= score_thr
    bboxes, scores, labels = pred.bboxes[keep].cpu(), pred.scores[keep].cpu(), pred.labels[keep].cpu()
    masks = pred.masks[keep].cpu().numpy() if 'masks' in pred else None
    out = []
    for i in range(len(scores)):
        x1, y1, x2, y2 = bboxes[i].tolist()
        label = int(labels[i])
        entry = dict(image_id=image_id, category_id=cat_ids[label] if cat_ids else label,
                     bbox=[x1, y1, x2 - x1, y2 - y1], score=float(scores[i]))
        if masks is not None:
            rle = mask_util.encode(np.asfortranarray(masks[i].astype(np.uint8)))
            rle['counts'] = rle['counts'].decode()
            entry['segmentation'] = rle
        out.append(entry)
    return out


def segment_inputs(model, source: str, out_dir: str, opacity: float = 0.5, score_thr: float = 0.3,
                   progress: bool = True, amp: bool = False) -> dict:
    """Runs ``model`` on every image (or every frame of a video) of ``source`` and writes to
    ``out_dir``:

    * ``overlays/<name>.png`` (a video: ``overlays/<name>.mp4``), drawn by mmseg's / mmdet's visualizer;
    * segmentation: ``pred/<name>.png``, palette PNGs of class indices (a video: one per frame,
      ``pred/<name>/<frame>.png``); detection: ``results.json`` in COCO results format
      (the dataset's COCO ``category_id`` and ``image_id`` where :func:`coco_ids` knows them, else the
      class index and a running number; ``images.json`` maps ``image_id`` to the file / frame).
      ``summary['coco_ids']`` says which.

    A file that cannot be read is reported and skipped; the others are finished. ``amp``: see
    :func:`inference`. Returns a summary: counts, failures, images/s, output paths.
    """
    import cv2
    from mmengine.utils import ProgressBar, mkdir_or_exist
    if model.kind not in ('seg', 'det'):
        raise BadConfigError('segment_inputs takes 2D models; use tools/infer_volume.py for volumes')
    files = collect_inputs(source)
    overlay_dir, pred_dir = osp.join(out_dir, 'overlays'), osp.join(out_dir, 'pred')
    mkdir_or_exist(overlay_dir)
    if model.kind == 'seg':
        mkdir_or_exist(pred_dir)
    vis = _visualizer(model, opacity)
    palette = (model.dataset_meta or {}).get('palette')
    results, images, failed = [], [], []
    cat_ids, image_ids = coco_ids(model) if model.kind == 'det' else (None, {})
    next_id = max(image_ids.values(), default=-1) + 1  # for images the annotation file does not list
    done, start = 0, time.perf_counter()

    def predict_one(img_bgr, name, pred_path):
        nonlocal done, next_id
        sample = inference(model, img_bgr, amp=amp)
        if model.kind == 'seg':
            _label_map_png(sample, palette, pred_path)
        else:
            image_id = image_ids.get(name)
            if image_id is None:  # not in the dataset's annotation file: numbered after its ids
                image_id, next_id = next_id, next_id + 1
            images.append(dict(id=image_id, file_name=name, height=img_bgr.shape[0], width=img_bgr.shape[1]))
            results.extend(_coco_results(sample, image_id, score_thr, cat_ids))
        done += 1
        return _draw(vis, model, img_bgr, sample, score_thr)

    videos = {f for f in files if f.lower().endswith(VIDEO_SUFFIXES)}
    bar = ProgressBar(len(files) - len(videos)) if progress and len(files) > len(videos) else None
    for path in files:
        stem = osp.splitext(osp.basename(path))[0]
        try:
            if path in videos:
                _video(path, stem, overlay_dir, pred_dir if model.kind == 'seg' else None, predict_one, progress)
            else:
                img = cv2.imread(path)
                if img is None:
                    raise BadInputError('not a readable image')
                overlay = predict_one(img, osp.basename(path), osp.join(pred_dir, f'{stem}.png'))
                cv2.imwrite(osp.join(overlay_dir, f'{stem}.png'), overlay)
        except (ValueError, OSError, cv2.error) as error:
            failed.append((path, str(error)))
            print(f'\nskipped {path}: {error}')
        if bar is not None and path not in videos:
            bar.update()
    elapsed = time.perf_counter() - start
    summary = dict(inputs=len(files), images=done, failed=failed, seconds=elapsed,
                   images_per_s=done / elapsed if elapsed > 0 else 0.0, overlays=overlay_dir)
    if model.kind == 'det':
        for name, data in (('results.json', results), ('images.json', images)):
            with open(osp.join(out_dir, name), 'w') as f:
                json.dump(data, f)
        summary['results'] = osp.join(out_dir, 'results.json')
        summary['coco_ids'] = 'dataset' if cat_ids else 'class index'
    else:
        summary['predictions'] = pred_dir
    return summary


def _video(path, stem, overlay_dir, pred_dir, predict_one, progress):
    """Every frame of a video; the overlays are written to ``overlays/<stem>.mp4``, label maps
    (``pred_dir`` given) to ``pred_dir/<stem>/<frame>.png``."""
    import cv2
    from mmengine.utils import ProgressBar, mkdir_or_exist
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise BadInputError('not a readable video')
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    bar = ProgressBar(frames) if progress and frames else None
    writer, index = None, 0
    frame_dir = osp.join(pred_dir, stem) if pred_dir else None
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index == 0 and frame_dir:
                mkdir_or_exist(frame_dir)
            overlay = predict_one(frame, f'{osp.basename(path)}#{index}',
                                  frame_dir and osp.join(frame_dir, f'{index:06d}.png'))
            if writer is None:
                writer = cv2.VideoWriter(osp.join(overlay_dir, f'{stem}.mp4'), cv2.VideoWriter_fourcc(*'mp4v'),
                                         fps, (overlay.shape[1], overlay.shape[0]))
            writer.write(overlay)
            index += 1
            if bar is not None:
                bar.update()
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if index == 0:
        raise BadInputError('a video without readable frames')
