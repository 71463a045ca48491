# FC-HarDNet-70 on Cityscapes, the official recipe (PingoLH/FCHarDNet configs/hardnet.yml): 1024x1024 crops of
# images rescaled by 0.5-2.0, horizontal flips, batch 16 (8 GPUs x 2), SGD lr 0.02 / momentum 0.9 / weight decay
# 5e-4, poly decay (power 0.9) over 90k iterations, bootstrapped cross-entropy (mmseg's OHEMPixelSampler, see
# the model base). Evaluation at 2048x1024. Official: val mIoU 77.7 (test 75.9).
# Official weights: python tools/convert/fchardnet_official_to_densedet.py hardnet70_cityscapes_model.pkl
# fchardnet70.pth --config configs/hardnet/fchardnet70_cityscapes.py, then load_from=fchardnet70.pth.
_base_ = ['../_base_/models/fchardnet70.py', 'mmseg::_base_/datasets/cityscapes_1024x1024.py',
          '../_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py']
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
crop_size = (1024, 1024)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [  # the official augmentation: no photometric distortion
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=4, dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=0.02))  # momentum 0.9, weight decay 5e-4: the base's
max_iters = 90000
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=500)
default_hooks = dict(checkpoint=dict(interval=5000, max_keep_ckpts=2, save_best='mIoU'))
