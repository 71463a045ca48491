"""NIfTI reading and writing with nibabel, in densedet's volume axis order.

nibabel returns arrays indexed like the file's voxel axes ``(i, j, k)``; densedet's
networks see ``(D, H, W)`` = ``(k, j, i)`` (slices first, as ``torch.nn.Conv3d`` and as
H-DenseUNet's slice-wise 2D branch expect). :func:`read_nifti` transposes on the way in,
:func:`write_nifti` on the way out, so a prediction written with the input's affine and
header overlays the input in any viewer. Spacing is reported in the same ``(D, H, W)``
order. Nothing is reoriented: the original affine travels with the sample.
"""
import os
import os.path as osp
import tempfile
import zlib
from typing import List, Optional, Tuple

import nibabel as nib
import numpy as np

from densedet.errors import BadDataError, DataNotFoundError

NIFTI_SUFFIXES = ('.nii.gz', '.nii')


class NiftiVolume:
    """An array in ``(C, D, H, W)`` (or ``(D, H, W)``) order plus the file's geometry."""

    def __init__(self, data: np.ndarray, affine: np.ndarray, header: nib.Nifti1Header, path: str):
        self.data = data
        self.affine = affine
        self.header = header
        self.path = path

    @property
    def spacing(self) -> Tuple[float, ...]:
        """Voxel size in mm, ``(D, H, W)`` order."""
        return tuple(float(z) for z in self.header.get_zooms()[:3][::-1])


def to_dhw(array: np.ndarray) -> np.ndarray:
    """File order ``(i, j, k[, c])`` -> ``([c,] D, H, W)``."""
    if array.ndim == 3:
        return np.ascontiguousarray(array.transpose(2, 1, 0))
    return np.ascontiguousarray(array.transpose(3, 2, 1, 0))


def from_dhw(array: np.ndarray) -> np.ndarray:
    """``([c,] D, H, W)`` -> file order ``(i, j, k[, c])``."""
    if array.ndim == 3:
        return array.transpose(2, 1, 0)
    return array.transpose(3, 2, 1, 0)


def voxel_axes(affine: np.ndarray) -> List[str]:
    """The world axis each of densedet's ``(D, H, W)`` axes runs along, ``'LR'`` / ``'AP'`` / ``'SI'``
    (nibabel's closest axis codes, direction ignored): what a network trained on one slice
    direction needs its inputs to keep."""
    pairs = {'L': 'LR', 'R': 'LR', 'A': 'AP', 'P': 'AP', 'S': 'SI', 'I': 'SI'}
    return [pairs[c] for c in nib.aff2axcodes(affine)[::-1]]  # file axes (i, j, k) are (W, H, D)


def read_nifti(path: str, dtype=np.float32, channels: Optional[bool] = False, what: str = 'image') -> NiftiVolume:
    """Reads a ``.nii`` / ``.nii.gz`` file.

    Args:
        dtype: array type (``None``: the file's own, e.g. uint8 labels stay uint8).
        channels: ``False``: the file must be 3D, returns ``(D, H, W)``; ``True``: 3D or 4D
            (MSD's multi-modal images, channels last in the file), returns ``(C, D, H, W)``.
        what: how the error messages call the file (``'image'``, ``'label'``).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for a
    corrupt / truncated one or one with the wrong number of dimensions.
    """
    if not osp.isfile(path):
        raise DataNotFoundError(f'{what} file not found: {path}')
    if not path.endswith(NIFTI_SUFFIXES):
        raise BadDataError(f'{what} file {path} is not NIfTI (expected .nii or .nii.gz)')
    try:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj) if dtype is None else np.asarray(img.dataobj, dtype=dtype)
    except (nib.filebasedimages.ImageFileError, EOFError, OSError, zlib.error, ValueError) as e:
        raise BadDataError(f'{what} file {path} cannot be read as NIfTI (corrupt or truncated?): {e}') from e
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 3:
        data = to_dhw(data)
        if channels:
            data = data[None]
    elif data.ndim == 4 and channels:
        data = to_dhw(data)
    else:
        expected = '3D or 4D (channels last)' if channels else '3D'
        raise BadDataError(f'{what} file {path} has shape {data.shape} ({data.ndim}D); expected {expected}')
    return NiftiVolume(data, img.affine.copy(), img.header.copy(), path)


def write_nifti(array: np.ndarray, path: str, affine: np.ndarray, header: Optional[nib.Nifti1Header] = None,
                dtype=np.uint8) -> str:
    """Writes a ``(D, H, W)`` array as NIfTI with ``affine`` (and the source ``header``'s
    units / qform / sform codes); atomically: a crash never leaves a half-written file."""
    data = from_dhw(np.asarray(array)).astype(dtype)
    header = header.copy() if header is not None else None
    img = nib.Nifti1Image(data, affine, header=header)
    img.set_data_dtype(dtype)
    if header is not None:  # keep the source's q/s-form codes with the (same) affine
        img.set_qform(affine, code=int(header['qform_code']) or 1)
        img.set_sform(affine, code=int(header['sform_code']) or 1)
        img.header['scl_slope'], img.header['scl_inter'] = 1, 0
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = '.nii.gz' if path.endswith('.nii.gz') else '.nii'
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=directory)
    os.close(fd)
    try:
        nib.save(img, tmp)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return path
