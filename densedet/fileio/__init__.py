"""File formats densedet reads and writes itself (volumes, plans and splits, atomic files);
transforms, metrics, datasets, the preparation job and APIs all import them from here."""
from .atomic import atomic_write, exclusive_lock, write_json
from .nifti import NIFTI_SUFFIXES, NiftiVolume, from_dhw, read_nifti, to_dhw, voxel_axes, write_nifti
from .plans import load_plans, load_split, load_splits

__all__ = ['NIFTI_SUFFIXES', 'NiftiVolume', 'atomic_write', 'exclusive_lock', 'from_dhw', 'load_plans', 'load_split',
           'load_splits', 'read_nifti', 'to_dhw', 'voxel_axes', 'write_json', 'write_nifti']
