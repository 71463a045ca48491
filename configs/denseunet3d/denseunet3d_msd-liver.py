# 3D DenseUNet (H-DenseUNet's 3D branch alone) on MSD Task03_Liver, nnU-Net-style training.
_base_ = [
    '../_base_/models/denseunet3d.py', '../_base_/datasets/msd_liver.py', '../_base_/schedules/volume_sgd_poly.py',
    '../_base_/volume_runtime.py'
]
model = dict(test_cfg=dict(roi_size=(48, 160, 160), overlap=0.5, flip_axes=[[3], [4], [3, 4]]))
