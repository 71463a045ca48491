# Stage 2 of the FC-DenseNet recipe: fine-tune on full-size 480x360 images with lr 1e-4 and
# early-stopping patience 50, from the best stage-1 checkpoint:
#   python tools/train.py configs/fcdensenet/fcdensenet103_camvid-ft.py \
#       --cfg-options load_from=work_dirs/fcdensenet103_camvid/best_mIoU_epoch_N.pth
_base_ = ['../fcdensenet103_camvid.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=11),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
model = dict(data_preprocessor=dict(size=(360, 480)))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
custom_hooks = [dict(type='EarlyStoppingHook', monitor='mIoU', rule='greater', patience=50)]
