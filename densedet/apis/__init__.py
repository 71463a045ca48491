"""High-level helpers: config preparation for the tools, inference."""
from .config import check_data_roots, enable_amp, prepare_config, setup_test_outputs

__all__ = ['prepare_config', 'check_data_roots', 'enable_amp', 'setup_test_outputs']
