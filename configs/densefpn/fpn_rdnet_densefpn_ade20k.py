# Semantic FPN (mmseg's FPNHead) on RDNet-T with the DenseFPN neck (dense top-down + bottom-up,
# weighted-sum fusion) on ADE20K; the RDNet segmentation schedule (AdamW + stage-wise lr decay,
# 160k iterations, 512x512 crops, 16 images per iteration).
_base_ = [
    'mmseg::_base_/models/fpn_r50.py', '../_base_/datasets/ade20k.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_160k_adamw_layer_decay.py'
]
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(_delete_=True, type='RDNet', arch='tiny', drop_path_rate=0.1, init_cfg=None),
    neck=dict(type='DenseFPN', in_channels=[256, 440, 744, 1040], out_channels=256, num_outs=4,
              fusion='weighted_sum', bottom_up=True),
    decode_head=dict(num_classes=150))
auto_scale_lr = dict(enable=False, base_batch_size=16)
