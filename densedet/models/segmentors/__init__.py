"""Segmentors for volumes (mmseg's ``EncoderDecoder`` is 2D)."""
from .hdense_unet import HDenseUNet, slices_to_volume, slices_with_neighbours
from .volume_encoder_decoder import BaseVolumeSegmentor, VolumeEncoderDecoder

__all__ = ['BaseVolumeSegmentor', 'VolumeEncoderDecoder', 'HDenseUNet', 'slices_with_neighbours', 'slices_to_volume']
