"""Stand-ins for compiled ops of the OpenMMLab stack. Kept free of imports: ``mmcv_ext`` is also
loaded at interpreter start-up by a .pth hook (see its docstring)."""
