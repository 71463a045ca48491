# configs/denseunet3d/denseunet3d_msd-liver.py on the preprocessed data path: plan and preprocess
# once (configs/_base_/datasets/msd_liver_preprocessed.py says how), then train as usual.
_base_ = [
    '../_base_/models/denseunet3d.py', '../_base_/datasets/msd_liver_preprocessed.py',
    '../_base_/schedules/volume_sgd_poly.py', '../_base_/volume_runtime.py'
]
model = dict(test_cfg=dict(roi_size=(48, 160, 160), overlap=0.5, flip_axes=[[3], [4], [3, 4]]))
