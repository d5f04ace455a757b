"""pydicom's bundled test files as a varied real corpus: compressed transfer syntaxes,
big endian, deflate, RT, SR, waveforms and character sets.

Only files shipped inside the pydicom package are used (never the ones pydicom would
download), chosen so that no two share a SOP Instance UID.
"""

from __future__ import annotations

from pathlib import Path

import pydicom

DATA = Path(pydicom.__file__).parent / "data"

SAMPLES = (
    "test_files/CT_small.dcm",                   # Explicit VR Little Endian, CT
    "test_files/MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless, MR
    "test_files/SC_rgb_rle.dcm",                 # RLE lossless, colour
    "test_files/JPEG2000.dcm",                   # JPEG 2000
    "test_files/SC_rgb_jpeg_dcmtk.dcm",          # JPEG baseline, colour
    "test_files/JPEG-lossy.dcm",                 # JPEG extended, 12 bit
    "test_files/image_dfl.dcm",                  # Deflated Explicit VR Little Endian
    "test_files/ExplVR_BigEnd.dcm",              # Explicit VR Big Endian (retired)
    "test_files/rtplan.dcm",                     # RT Plan, Implicit VR
    "test_files/rtdose.dcm",                     # RT Dose
    "test_files/test-SR.dcm",                    # Comprehensive SR
    "test_files/waveform_ecg.dcm",               # 12-lead ECG waveform
    "charset_files/chrArab.dcm",
    "charset_files/chrFren.dcm",
    "charset_files/chrGerm.dcm",
    "charset_files/chrGreek.dcm",
    "charset_files/chrH31.dcm",
    "charset_files/chrH32.dcm",
    "charset_files/chrHbrw.dcm",
    "charset_files/chrI2.dcm",
    "charset_files/chrJapMulti.dcm",
    "charset_files/chrRuss.dcm",
    "charset_files/chrX1.dcm",
    "charset_files/chrX2.dcm",
)


def pydicom_samples() -> list[Path]:
    """The paths of :data:`SAMPLES` in the installed pydicom.

    Raises:
        FileNotFoundError: this pydicom lacks one of them.
    """
    paths = [DATA / name for name in SAMPLES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"pydicom {pydicom.__version__} lacks {', '.join(missing)}")
    return paths
