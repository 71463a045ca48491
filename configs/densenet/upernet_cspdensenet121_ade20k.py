# UperNet + CSPDenseNet-121 (cross-stage partial dense stages, CSPNet) on ADE20K: the DenseNet-121 config with
# half of each stage's channels through its dense block. No ImageNet weights are published for it.
_base_ = ['./upernet_densenet121_ade20k.py']
model = dict(
    backbone=dict(arch='csp121'),
    decode_head=dict(in_channels=[144, 246, 476, 434]),
    auxiliary_head=dict(in_channels=476))
