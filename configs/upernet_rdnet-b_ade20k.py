# UperNet + RDNet-B on ADE20K (official recipe: drop path 0.2, wd 0.01, lr 8e-5, decay 0.9).
_base_ = ['upernet_rdnet_ade20k.py']
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.2),
    decode_head=dict(in_channels=[408, 584, 1000, 1760]),
    auxiliary_head=dict(in_channels=1000))
optim_wrapper = dict(optimizer=dict(lr=8e-5, weight_decay=0.01))
