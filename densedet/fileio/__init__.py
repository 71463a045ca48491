"""File formats densedet reads and writes itself (volumes); transforms, metrics, datasets and
APIs all import them from here."""
from .nifti import NIFTI_SUFFIXES, NiftiVolume, from_dhw, read_nifti, to_dhw, write_nifti

__all__ = ['NIFTI_SUFFIXES', 'NiftiVolume', 'from_dhw', 'read_nifti', 'to_dhw', 'write_nifti']
