# FC-HarDNet-70 on CamVid (11 classes + void, 480x360). The official repository has a CamVid loader but
# publishes no CamVid recipe: this keeps the Cityscapes recipe's optimiser, schedule shape and loss, and the
# CamVid data of densedet's FC-DenseNet configs (random 224x224 crops + flips), batch 16 on one GPU,
# 30k iterations (about 1300 epochs of the 367 training images), evaluation at full resolution.
_base_ = ['../_base_/models/fchardnet70.py', '../_base_/datasets/camvid.py', '../_base_/default_runtime.py',
          'mmseg::_base_/schedules/schedule_80k.py']
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
crop_size = (224, 224)
model = dict(data_preprocessor=dict(size=crop_size),
             backbone=dict(norm_cfg=dict(type='BN', requires_grad=True)),
             decode_head=dict(num_classes=11, norm_cfg=dict(type='BN', requires_grad=True)))
train_dataloader = dict(batch_size=16, sampler=dict(type='InfiniteSampler', shuffle=True))
optim_wrapper = dict(optimizer=dict(lr=0.02))  # momentum 0.9, weight decay 5e-4: the base's
max_iters = 30000
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1000, max_keep_ckpts=2, save_best='mIoU'))
