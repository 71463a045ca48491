# nnU-Net's optimizer: SGD lr 0.01, momentum 0.99, Nesterov, weight decay 3e-5, poly (0.9)
# decay; iteration-based, validation every 5000 iterations (sliding window over whole cases).
max_iters = 100000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.99, nesterov=True, weight_decay=3e-5),
    clip_grad=dict(max_norm=12))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
