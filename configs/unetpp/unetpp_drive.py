# UNet++ (the paper's network, configs/_base_/models/unetpp_plain.py) on DRIVE with mmseg's DRIVE
# dataset, 64x64 training crops, slide inference (crop 64, stride 42) and IoUMetric (mIoU, mDice),
# as mmseg's own U-Net DRIVE setting; Adam lr 3e-4 (the paper's optimizer), 40k iterations of 4 crops.
_base_ = [
    '../_base_/models/unetpp_plain.py', 'mmseg::_base_/datasets/drive.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k_adam.py'
]
crop_size = (64, 64)
model = dict(data_preprocessor=dict(size=crop_size), test_cfg=dict(crop_size=crop_size, stride=(42, 42)))
train_dataloader = dict(batch_size=4)
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU', 'mDice'])
test_evaluator = val_evaluator
