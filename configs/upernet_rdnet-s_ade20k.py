# UperNet + RDNet-S on ADE20K (official recipe: drop path 0.2, wd 0.03, lr 8e-5, decay 0.9).
_base_ = ['upernet_rdnet_ade20k.py']
model = dict(
    backbone=dict(arch='small', drop_path_rate=0.2),
    decode_head=dict(in_channels=[264, 512, 760, 1264]),
    auxiliary_head=dict(in_channels=760))
optim_wrapper = dict(optimizer=dict(lr=8e-5, weight_decay=0.03))
