# FC-DenseNet56 (growth 12, 4 layers per block) with the FC-DenseNet103 CamVid recipe.
# Paper (Table 2): 58.9 mIoU, 88.9 global accuracy.
_base_ = ['../fcdensenet103_camvid.py']
model = dict(backbone=dict(arch='56'),
             decode_head=dict(in_channels=[96, 144, 192, 240, 288, 48], up_layers=(4, ) * 5, growth=12))
