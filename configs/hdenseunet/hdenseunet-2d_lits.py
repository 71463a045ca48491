# H-DenseUNet stage 1: the 2D DenseUNet alone, on the slices of each crop (three adjacent
# slices as channels).
# ImageNet weights (the paper's init; torchvision's densenet161 checkpoint loads as is):
#   --cfg-options model.encoder2d.init_cfg.type=Pretrained \
#                 model.encoder2d.init_cfg.checkpoint=densenet161-8d451a50.pth
_base_ = ['../hdenseunet_lits.py']
model = dict(stage='2d')
load_from = None
# the 3D branch and HFF get no gradient in this stage
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
