"""Volume datasets: Medical Segmentation Decathlon, nnU-Net v2 raw, LiTS.

Each returns, per case, file paths and names only (``case_id``, ``img_paths`` (one file per
channel, or one 4D file), ``seg_path``); reading happens in
:class:`~densedet.transforms.LoadVolumeFromFile`, which keeps the affine and spacing. Every
listed file is checked to exist when the dataset is built: a missing one is one
``FileNotFoundError`` naming the list it came from and the case.

``metainfo``: ``classes`` (names, background first), ``label_values`` (the integer each
class has in the label files; mapped to 0..K-1 on load), ``modalities``, and the two kinds of
label nnU-Net v2 adds:

- ``ignore_value``: a label value for unannotated voxels (sparse annotation), mapped to 255 on
  load and left out of losses and metrics (nnU-Net's ``"ignore"`` label);
- ``regions``: overlapping regions, each a set of classes, trained with one sigmoid output each
  (nnU-Net's region-based training, e.g. BraTS whole tumour / tumour core / enhancing tumour),
  as ``[dict(name, labels=[class indices], order=class index painted at prediction)]``
  (:mod:`densedet.structures.labels`).

nnU-Net v2's ``dataset.json`` declares both (a list of values for a region, ``regions_class_order``,
an ``"ignore"`` label); for any dataset the config can give them (``regions``, ``regions_class_order``,
``ignore_label``, in label values).
"""
import glob
import json
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence

from mmengine.dataset import BaseDataset

from densedet.errors import BadConfigError, BadDataError, ConfigKeyError, DataKeyError, DataNotFoundError
from densedet.fileio import NIFTI_SUFFIXES, load_split
from densedet.registry import DATASETS


def _strip_nifti(name: str) -> str:
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


class VolumeDataset(BaseDataset):
    """Shared part: ``cases`` subset, file checks, metainfo from the dataset's own description.

    Args:
        data_root: the task folder.
        split: ``'train'`` (the labelled cases) or ``'test'`` (unlabelled images).
        cases: keep only these case ids (e.g. a validation fold), in this order.
        splits_file, fold, fold_part: instead of ``cases``, the ``fold_part`` (``'train'`` or
            ``'val'``) case ids of ``fold`` in a splits file (tools/data/plan_volumes.py writes
            5 seeded folds).
        regions: ``{name: [label values]}`` trained as overlapping regions (one sigmoid output
            each), painted back in ``regions_class_order`` (one label value per region; default
            each region's largest value).
        ignore_label: a label value that marks unannotated voxels (not a class).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``pipeline``,
            ``test_mode``, ``indices``, ...).
    """

    #: the description file under ``data_root`` (``ann_file`` overrides it)
    default_ann_file = ''

    def __init__(self, data_root: str, split: str = 'train', cases: Optional[Sequence[str]] = None,
                 splits_file: Optional[str] = None, fold: Optional[int] = None, fold_part: str = 'train',
                 regions: Optional[Dict[str, Sequence[int]]] = None,
                 regions_class_order: Optional[Sequence[int]] = None, ignore_label: Optional[int] = None, **kwargs):
        kwargs.setdefault('ann_file', self.default_ann_file)
        if split not in ('train', 'test'):
            raise BadConfigError(f"{type(self).__name__}: split must be 'train' or 'test', got {split!r}")
        if splits_file is not None:
            if cases is not None or fold is None:
                raise BadConfigError(f'{type(self).__name__}: splits_file needs fold (and no cases)')
            cases = load_split(splits_file, fold, fold_part)
        self.split = split
        self.cases = list(cases) if cases is not None else None
        self.label_options = dict(regions=regions, regions_class_order=regions_class_order, ignore_value=ignore_label)
        kwargs.setdefault('serialize_data', False)
        super().__init__(data_root=data_root, **kwargs)

    def _describe(self) -> dict:
        """``dict(classes, label_values, modalities)`` of the task."""
        raise NotImplementedError

    def _list_cases(self) -> List[dict]:
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        if not osp.isdir(self.data_root):
            raise DataNotFoundError(f'{type(self).__name__}: data_root {self.data_root!r} does not exist')
        info = self._describe()
        info.update(resolve_labels(info, self.label_options, type(self).__name__, self.ann_file))
        self._metainfo.update(info)
        data_list = self._list_cases()
        if self.cases is not None:
            by_id = {d['case_id']: d for d in data_list}
            unknown = [c for c in self.cases if c not in by_id]
            if unknown:
                raise ConfigKeyError(f'{type(self).__name__}: cases {unknown} are not in {self.data_root} '
                                     f'(known: {sorted(by_id)[:10]}...)')
            data_list = [by_id[c] for c in self.cases]
        for item in data_list:
            item['label_values'] = list(info['label_values'])
            item['num_channels'] = len(info['modalities'])
            item['classes'] = tuple(info['classes'])
            item['regions'] = info['regions']
            item['ignore_value'] = info['ignore_value']
            for path in item['img_paths'] + ([item['seg_path']] if item.get('seg_path') else []):
                if not osp.isfile(path):
                    raise DataNotFoundError(f'{type(self).__name__}: case {item["case_id"]!r} ({item["source"]}) '
                                            f'names {path}, which does not exist')
        if not data_list:
            raise BadDataError(f'{type(self).__name__}: no {self.split} cases found under {self.data_root}')
        return data_list


def resolve_labels(info: dict, options: dict, owner: str, source: str) -> dict:
    """``regions`` (index form) and ``ignore_value`` of a task from its description (``info``) and
    the config's ``options`` (which win), checked against the declared labels."""
    declared = [int(v) for v in info['label_values']]
    named = dict(zip(declared, info['classes']))
    ignore = options.get('ignore_value')
    ignore = info.get('ignore_value') if ignore is None else int(ignore)
    if ignore is not None and ignore in named:
        raise BadConfigError(f'{owner}: the ignore label {ignore} collides with class {named[ignore]!r} of {source} '
                             f'(labels {declared})')
    regions = options.get('regions') or info.get('regions')
    if not regions:
        return dict(regions=None, ignore_value=ignore)
    order = options.get('regions_class_order') if options.get('regions') else info.get('regions_class_order')
    regions = {name: [int(v) for v in (values if isinstance(values, (list, tuple)) else [values])]
               for name, values in regions.items()}
    for name, values in regions.items():
        bad = sorted(set(values) - set(declared))
        if bad or 0 in values:
            raise DataKeyError(f'{owner}: regions[{name!r}] names label values {bad or [0]}, not foreground labels of '
                               f'{source} (labels {declared})')
    order = [max(v) for v in regions.values()] if order is None else [int(v) for v in order]
    if len(order) != len(regions) or not set(order) <= set(declared):
        raise DataKeyError(f'{owner}: regions_class_order {order} needs one label value of {source} per region '
                           f'({len(regions)} regions, labels {declared})')
    index = {v: i for i, v in enumerate(declared)}
    return dict(regions=[dict(name=name, labels=[index[v] for v in values], order=index[o])
                         for (name, values), o in zip(regions.items(), order)], ignore_value=ignore)


def _read_json(path: str, required: Sequence[str], kind: str) -> dict:
    """A task's ``dataset.json``, with one clear error for a missing file, bad JSON or key."""
    if not osp.isfile(path):
        raise DataNotFoundError(f'dataset description not found: {path}')
    try:
        with open(path) as f:
            desc = json.load(f)
    except json.JSONDecodeError as e:
        raise BadDataError(f'{path} is not valid JSON: {e}') from e
    for key in required:
        if key not in desc:
            raise DataKeyError(f'{path}: key {key!r} is missing (not an {kind} dataset.json?)')
    return desc


@DATASETS.register_module()
class MSDDataset(VolumeDataset):
    """A Medical Segmentation Decathlon task (``Task03_Liver``, ...).

    Layout: ``dataset.json`` (``labels`` index -> name, ``modality`` index -> name,
    ``training`` list of ``{"image", "label"}``, optional ``test`` list), ``imagesTr/``,
    ``labelsTr/``, ``imagesTs/``. Multi-modal tasks store one 4D image per case (channels
    last); without a ``test`` list the test split is every NIfTI file in ``imagesTs/``.
    """

    default_ann_file = 'dataset.json'

    def _describe(self) -> dict:
        desc = self._desc = _read_json(self.ann_file, ('labels', 'training'), 'MSD')
        labels = sorted((int(k), v) for k, v in desc['labels'].items())
        modalities = [v for _, v in sorted((int(k), v) for k, v in desc.get('modality', {'0': 'image'}).items())]
        return dict(classes=tuple(n for _, n in labels), label_values=[v for v, _ in labels],
                    modalities=tuple(modalities))

    def _resolve(self, rel: str) -> str:
        return osp.normpath(osp.join(self.data_root, rel))

    def _list_cases(self) -> List[dict]:
        desc = self._desc
        if self.split == 'train':
            items = []
            for i, entry in enumerate(desc['training']):
                if not isinstance(entry, dict) or 'image' not in entry or 'label' not in entry:
                    raise DataKeyError(f'{self.ann_file}: training[{i}] needs "image" and "label", got {entry!r}')
                image = self._resolve(entry['image'])
                items.append(dict(case_id=_strip_nifti(osp.basename(image)), img_paths=[image],
                                  seg_path=self._resolve(entry['label']), source=f'{self.ann_file} training[{i}]'))
            return items
        if desc.get('test'):
            paths = [self._resolve(e['image'] if isinstance(e, dict) else e) for e in desc['test']]
            source = f'{self.ann_file} test'
        else:
            paths = sorted(p for p in glob.glob(osp.join(self.data_root, 'imagesTs', '*'))
                           if p.endswith(NIFTI_SUFFIXES) and not osp.basename(p).startswith('._'))
            source = 'imagesTs/'
        return [dict(case_id=_strip_nifti(osp.basename(p)), img_paths=[p], seg_path=None, source=source)
                for p in paths]


@DATASETS.register_module()
class NnUNetDataset(VolumeDataset):
    """An nnU-Net v2 raw dataset (``DatasetXXX_Name``).

    Layout: ``dataset.json`` (``channel_names`` index -> name, ``labels`` name -> int,
    ``file_ending``), ``imagesTr/{case}_{XXXX}{file_ending}`` (one file per channel),
    ``labelsTr/{case}{file_ending}``, ``imagesTs/``. Region-based labels (a list of ints per
    name, with ``regions_class_order``) and an ``"ignore"`` label as nnU-Net v2 declares them.
    """

    default_ann_file = 'dataset.json'

    def _describe(self) -> dict:
        desc = self._desc = _read_json(self.ann_file, ('labels', 'channel_names'), 'nnU-Net v2')
        labels = dict(desc['labels'])
        ignore = labels.pop('ignore', None)
        for name, value in labels.items():
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise BadDataError(f'{self.ann_file}: labels[{name!r}] must be an integer or a list of integers '
                                   f'(a region), got {value!r}')
        if ignore is not None and not isinstance(ignore, int):
            raise BadDataError(f'{self.ann_file}: labels["ignore"] must be an integer, got {ignore!r}')
        names = {value: name for name, value in labels.items() if isinstance(value, int)}
        names.update({value[0]: name for name, value in labels.items() if isinstance(value, list) and len(value) == 1})
        values = sorted({v for value in labels.values() for v in (value if isinstance(value, list) else [value])})
        channels = [v for _, v in sorted((int(k), v) for k, v in desc['channel_names'].items())]
        info = dict(classes=tuple(names.get(v, f'label_{v}') for v in values), label_values=values,
                    modalities=tuple(channels), ignore_value=ignore)
        regions = {name: value for name, value in labels.items() if isinstance(value, list) or value != 0}
        if any(isinstance(v, list) for v in labels.values()):  # region-based (nnU-Net: any list makes it so)
            if 'regions_class_order' not in desc:
                raise DataKeyError(f'{self.ann_file}: region labels need "regions_class_order"')
            info.update(regions=regions, regions_class_order=desc['regions_class_order'])
        return info

    def _list_cases(self) -> List[dict]:
        ending = self._desc.get('file_ending', '.nii.gz')
        num_channels = len(self._desc['channel_names'])
        if self.split == 'train':
            folder = osp.join(self.data_root, 'labelsTr')
            ids = sorted(osp.basename(p)[:-len(ending)] for p in glob.glob(osp.join(folder, '*' + ending)))
            image_dir, source = 'imagesTr', f'labelsTr/ + {self.ann_file}'
        else:
            pattern = re.compile(r'^(.*)_\d{4}' + re.escape(ending) + '$')
            names = [osp.basename(p) for p in glob.glob(osp.join(self.data_root, 'imagesTs', '*' + ending))]
            ids = sorted({m.group(1) for m in map(pattern.match, names) if m})
            image_dir, source = 'imagesTs', 'imagesTs/'
        return [
            dict(case_id=c,
                 img_paths=[osp.join(self.data_root, image_dir, f'{c}_{k:04d}{ending}') for k in range(num_channels)],
                 seg_path=osp.join(self.data_root, 'labelsTr', c + ending) if self.split == 'train' else None,
                 source=source) for c in ids
        ]


@DATASETS.register_module()
class LiTSDataset(VolumeDataset):
    """LiTS (Liver Tumor Segmentation challenge): ``volume-N.nii`` with ``segmentation-N.nii``
    (0 background, 1 liver, 2 tumour), searched recursively under ``data_root`` (the
    challenge ships them in ``Training Batch 1/2``); test: ``test-volume-N.nii``."""

    METAINFO = dict(classes=('background', 'liver', 'tumor'))

    def _describe(self) -> dict:
        return dict(classes=self.METAINFO['classes'], label_values=[0, 1, 2], modalities=('CT', ))

    def _list_cases(self) -> List[dict]:
        prefix = 'volume-' if self.split == 'train' else 'test-volume-'
        paths = [p for p in glob.glob(osp.join(self.data_root, '**', prefix + '*'), recursive=True)
                 if p.endswith(NIFTI_SUFFIXES) and re.fullmatch(re.escape(prefix) + r'\d+', _strip_nifti(
                     osp.basename(p)))]
        paths.sort(key=lambda p: int(_strip_nifti(osp.basename(p)).rsplit('-', 1)[1]))
        items = []
        for p in paths:
            number = _strip_nifti(osp.basename(p)).rsplit('-', 1)[1]
            seg = None
            if self.split == 'train':
                candidates = [osp.join(osp.dirname(p), f'segmentation-{number}{s}') for s in NIFTI_SUFFIXES]
                seg = next((c for c in candidates if osp.isfile(c)), candidates[-1])
            items.append(dict(case_id=f'{prefix}{number}', img_paths=[p], seg_path=seg, source=osp.basename(p)))
        return items


