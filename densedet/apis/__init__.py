"""High-level helpers: config preparation for the tools, inference."""
from .config import check_data_roots, enable_amp, prepare_config, setup_test_outputs
from .image_inference import collect_inputs, inference, init_model, segment_inputs
from .onnx_export import export_onnx
from .volume_inference import inference_volume, init_volume_model

__all__ = ['prepare_config', 'check_data_roots', 'enable_amp', 'setup_test_outputs', 'init_volume_model',
           'inference_volume', 'init_model', 'inference', 'collect_inputs', 'segment_inputs', 'export_onnx']
