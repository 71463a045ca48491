# configs/hdenseunet_lits.py (end-to-end stage) on the preprocessed data path:
#   python tools/data/plan_volumes.py configs/hdenseunet/hdenseunet_lits_preprocessed.py   # splits.json (+ plans)
#   python tools/data/preprocess_volumes.py configs/hdenseunet/hdenseunet_lits_preprocessed.py --workers 8
# The stored cases are the HU-windowed volumes on their own grid (no resampling, as the recipe);
# training reads 12 x 224 x 224 crops (the 3D input; the 2D branch's context slices are inside
# it) centred on liver or tumour with equal odds from memory maps. Validation and test stay on the
# original files. For stages 1 and 2 set model.stage / load_from as hdenseunet-2d_lits.py and
# hdenseunet-3d_lits.py (next to this file) do.
_base_ = ['../hdenseunet_lits.py']

preprocessed_root = 'data/LiTS_preprocessed'
splits_file = preprocessed_root + '/splits.json'
fold = 0
hu_window = dict(type='IntensityWindow', window=(-200, 250), out_range=(-248, 202))
preprocess = dict(
    dataset=dict(type='LiTSDataset', data_root='data/LiTS'),
    pipeline=[dict(type='LoadVolumeFromFile'), hu_window],
    out_dir=preprocessed_root,
    plans_file=preprocessed_root + '/plans.json',
    memory_gb=8)
train_dataloader = dict(dataset=dict(
    _delete_=True, type='PreprocessedVolumeDataset', data_root=preprocessed_root, splits_file=splits_file, fold=fold,
    pipeline=[
        dict(type='LoadPreprocessedPatch', patch_size={{_base_.patch_size}}, fg_ratio=1.0),
        dict(type='RandomFlip3D', prob=0.5, axes=(1, 2)),
        dict(type='RandomRot90', prob=0.5, axes=(1, 2)),
        dict(type='PackVolumeInputs'),
    ]))
val_dataloader = dict(dataset=dict(cases=None, splits_file=splits_file, fold=fold, fold_part='val'))
test_dataloader = val_dataloader
