# The head-to-head benchmark's DenseUNet 3D: the full network of configs/denseunet3d/ on the synthetic
# hard task (configs/_base_/datasets/hardliver_preprocessed.py says how it is trained).
_base_ = ['../_base_/models/denseunet3d.py', '../_base_/datasets/hardliver_preprocessed.py']
patch_size = {{_base_.patch_size}}
# mirroring TTA over every subset of the axes, as nnU-Net's validation (8 passes)
model = dict(test_cfg=dict(roi_size=patch_size, overlap=0.5, sw_batch_size=2,
                           flip_axes=[[2], [3], [4], [2, 3], [2, 4], [3, 4], [2, 3, 4]]))
