# The Tiramisu upsampling path on another backbone: densedet's DenseNet-121 (four levels,
# strides 4-32) feeds FCDenseNetHead; the deepest level is narrowed to 256 maps by the first
# transition up. Logits come out at stride 4 and mmseg resizes them to the labels.
_base_ = ['../fcdensenet103_camvid.py']
model = dict(
    backbone=dict(_delete_=True, type='DenseNet', arch='121', out_indices=(0, 1, 2, 3)),
    decode_head=dict(in_channels=[256, 512, 1024, 1024], up_layers=(7, 5, 4), growth=16, up_channels=(256, 112, 80)))
