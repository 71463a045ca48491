# The DenseUNet 3D of the head-to-head benchmark against nnU-Net (docs/benchmarks.md, issue 23) on the
# preprocessed MSD liver: InstanceNorm instead of BatchNorm (batch statistics of 2 patches are noisy;
# nnU-Net's choice) and the decoder's two finest stages at nnU-Net's widths (64, 32 instead of 96, 64),
# which halved the training step there at the same Dice. The encoder is H-DenseUNet's.
_base_ = ['./denseunet3d_msd-liver_preprocessed.py']
norm_cfg = dict(type='IN3d', affine=True)
model = dict(backbone=dict(norm_cfg=norm_cfg),
             decode_head=dict(up_channels=(504, 224, 192, 64, 32), norm_cfg=norm_cfg))
