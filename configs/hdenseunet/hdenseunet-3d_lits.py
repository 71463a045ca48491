# H-DenseUNet stage 2: the 3D DenseUNet and the HFF layer on top of the fixed 2D DenseUNet of
# stage 1 (its weights, BN statistics included, do not change).
_base_ = ['../hdenseunet_lits.py']
model = dict(stage='3d')
load_from = 'work_dirs/hdenseunet-2d_lits/last_checkpoint'  # stage 1's latest checkpoint
