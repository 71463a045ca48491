# FC-DenseNet67 (growth 16, 5 layers per block) with the FC-DenseNet103 CamVid recipe.
# Paper (Table 2): 60.8 mIoU, 90.8 global accuracy.
_base_ = ['../fcdensenet103_camvid.py']
model = dict(backbone=dict(arch='67'),
             decode_head=dict(in_channels=[128, 208, 288, 368, 448, 80], up_layers=(5, ) * 5, growth=16))
