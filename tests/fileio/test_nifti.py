"""NIfTI IO: axis order, geometry kept, clear errors, atomic writes."""
import gzip
import os

import nibabel as nib
import numpy as np
import pytest

from densedet.fileio import read_nifti, write_nifti


def _affine():
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    affine[:3, 3] = (120.0, -30.0, 55.0)
    affine[0, 1] = 0.05
    return affine


def test_read_transposes_to_dhw_and_keeps_geometry(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)  # file axes (i, j, k)
    path = str(tmp_path / 'x.nii.gz')
    nib.save(nib.Nifti1Image(data, _affine()), path)
    vol = read_nifti(path)
    assert vol.data.shape == (6, 5, 4)  # (D, H, W) = (k, j, i)
    assert vol.data[3, 2, 1] == data[1, 2, 3]
    np.testing.assert_allclose(vol.affine, _affine())
    assert vol.spacing == pytest.approx((2.5, np.hypot(0.8, 0.05), 0.8), rel=1e-5)


def test_write_roundtrip_keeps_affine_header_and_values(tmp_path):
    src = str(tmp_path / 'img.nii.gz')
    img = nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), _affine())
    img.header.set_xyzt_units('mm', 'sec')
    img.set_qform(_affine(), code=1)
    img.set_sform(_affine(), code=2)
    nib.save(img, src)
    vol = read_nifti(src)
    pred = np.random.default_rng(0).integers(0, 3, vol.data.shape).astype(np.uint8)
    out = write_nifti(pred, str(tmp_path / 'out' / 'pred.nii.gz'), vol.affine, vol.header)
    back = nib.load(out)
    assert back.shape == (4, 5, 6)
    np.testing.assert_allclose(back.affine, _affine(), atol=1e-5)
    assert int(back.header['sform_code']) == 2 and back.header.get_xyzt_units() == ('mm', 'sec')
    assert back.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(read_nifti(out, dtype=np.uint8).data, pred)
    assert os.listdir(tmp_path / 'out') == ['pred.nii.gz']  # no temporary file left behind


def test_channels_4d(tmp_path):
    path = str(tmp_path / 'mm.nii.gz')
    nib.save(nib.Nifti1Image(np.random.rand(4, 5, 6, 2).astype(np.float32), np.eye(4)), path)
    assert read_nifti(path, channels=True).data.shape == (2, 6, 5, 4)
    with pytest.raises(ValueError, match=r'mm.nii.gz has shape \(4, 5, 6, 2\) \(4D\); expected 3D'):
        read_nifti(path)


def test_corrupt_and_missing_files(tmp_path):
    good = str(tmp_path / 'good.nii.gz')
    nib.save(nib.Nifti1Image(np.random.rand(8, 8, 8).astype(np.float32), np.eye(4)), good)
    truncated = tmp_path / 'trunc.nii.gz'
    truncated.write_bytes(open(good, 'rb').read()[:200])
    with pytest.raises(ValueError, match='trunc.nii.gz cannot be read as NIfTI'):
        read_nifti(str(truncated))
    garbage = tmp_path / 'garbage.nii.gz'
    with gzip.open(garbage, 'wb') as f:
        f.write(b'not a nifti header' * 40)
    with pytest.raises(ValueError, match='garbage.nii.gz cannot be read'):
        read_nifti(str(garbage))
    with pytest.raises(FileNotFoundError, match='label file not found'):
        read_nifti(str(tmp_path / 'nope.nii.gz'), what='label')
    with pytest.raises(ValueError, match='not NIfTI'):
        read_nifti(__file__)
