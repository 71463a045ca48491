# H-DenseUNet on LiTS, end-to-end stage (the paper's recipe): SGD lr 1e-3, momentum 0.9,
# Nesterov; class-weighted cross-entropy (0.78 / 0.65 / 8.57); HU window [-200, 250];
# crops centred on liver / tumour; loss = HFF loss + 0.5 x 2D loss.
# Staged training (one config each, each starting from the previous stage's checkpoint):
#   1. configs/hdenseunet/hdenseunet-2d_lits.py   2D DenseUNet (ImageNet DenseNet-161 init)
#   2. configs/hdenseunet/hdenseunet-3d_lits.py   3D DenseUNet + HFF, 2D fixed
#   3. configs/hdenseunet_lits.py                 everything, end to end (this file)
_base_ = ['_base_/models/hdenseunet.py', '_base_/datasets/lits.py', '_base_/volume_runtime.py']

model = dict(stage='hybrid', score_scale=250.0)  # official: the 2D scores x 250 join the HU volume
# stage 2's latest checkpoint: tools/train.py reads the path from the file
load_from = 'work_dirs/hdenseunet-3d_lits/last_checkpoint'

max_iters = 50000
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4))
param_scheduler = []  # the official code keeps the learning rate constant
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
