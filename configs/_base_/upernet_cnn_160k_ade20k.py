# UperNet on ADE20K with mmseg's recipe for CNN backbones (SGD, 160k iterations, 512x512 crops,
# slide inference). Family configs replace the backbone and the head input channels.
_base_ = [
    'models/upernet_rdnet.py', 'datasets/ade20k.py', 'default_runtime.py', 'mmseg::_base_/schedules/schedule_160k.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
