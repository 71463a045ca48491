# PSPNet (mmseg's PSPHead, a dilated head) on DenseNet-121 with output stride 8: the last two
# transitions stop pooling and blocks 3-4 use dilated 3x3 convs. mmseg's PSPNet ADE20K recipe.
_base_ = [
    'mmseg::_base_/models/pspnet_r50-d8.py', '../_base_/datasets/ade20k.py', '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
crop_size = (512, 512)
model = dict(
    pretrained=None,  # mmseg's base names a ResNet checkpoint here
    data_preprocessor=dict(size=crop_size),
    backbone=dict(_delete_=True, type='DenseNet', arch='121', output_stride=8, out_indices=(0, 1, 2, 3),
                  norm_cfg=dict(type='SyncBN', requires_grad=True)),
    decode_head=dict(in_channels=1024, num_classes=150),
    auxiliary_head=dict(in_channels=1024, num_classes=150))
