"""High-level helpers: config preparation for the tools, inference."""
from .config import check_data_roots, enable_amp, prepare_config, setup_test_outputs
from .volume_inference import inference_volume, init_volume_model

__all__ = ['prepare_config', 'check_data_roots', 'enable_amp', 'setup_test_outputs', 'init_volume_model',
           'inference_volume']
