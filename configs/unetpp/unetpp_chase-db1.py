# UNet++ (the paper's network) on CHASE_DB1 with mmseg's dataset, 128x128 crops and slide
# inference (crop 128, stride 85); otherwise as configs/unetpp/unetpp_drive.py.
_base_ = [
    '../_base_/models/unetpp_plain.py', 'mmseg::_base_/datasets/chase_db1.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k_adam.py'
]
crop_size = (128, 128)
model = dict(data_preprocessor=dict(size=crop_size), test_cfg=dict(crop_size=crop_size, stride=(85, 85)))
train_dataloader = dict(batch_size=4)
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU', 'mDice'])
test_evaluator = val_evaluator
