# mmseg's 40k-iteration schedule with the UNet++ paper's optimizer (Adam, lr 3e-4), poly decay.
_base_ = ['mmseg::_base_/schedules/schedule_40k.py']
optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='Adam', lr=3e-4, betas=(0.9, 0.999)))
param_scheduler = [dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end=40000, by_epoch=False)]
