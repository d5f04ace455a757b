"""Presentation contexts for the storage SOP classes (PS3.4 Annex B).

An association holds at most 128 presentation contexts (PS3.8 9.3.2.2). For C-GET the
requestor must propose every storage SOP class the retrieve may bring back, and a peer
sends an instance without transcoding only if a context with the instance's transfer
syntax was accepted. So the most common image classes get three contexts each
(uncompressed, lossless compressed, lossy compressed) and every other class one.
"""

from __future__ import annotations

from pydicom.uid import (
    JPEG2000,
    RLELossless,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    UID,
)
from pynetdicom import AllStoragePresentationContexts, StoragePresentationContexts, build_context
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (
    BreastTomosynthesisImageStorage,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalMammographyXRayImageStorageForPresentation,
    DigitalMammographyXRayImageStorageForProcessing,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    MRImageStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    NuclearMedicineImageStorage,
    PositronEmissionTomographyImageStorage,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    VLPhotographicImageStorage,
    XRayAngiographicImageStorage,
    XRayRadiofluoroscopicImageStorage,
)

UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                ExplicitVRBigEndian]
LOSSLESS = [JPEG2000Lossless, JPEGLSLossless, JPEGLosslessSV1, JPEGLossless, RLELossless]
LOSSY = [JPEGBaseline8Bit, JPEGExtended12Bit, JPEG2000, JPEGLSNearLossless]
EVERY_SYNTAX = UNCOMPRESSED + LOSSLESS + LOSSY

COMMON_IMAGE_CLASSES = [
    CTImageStorage, MRImageStorage, ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation, DigitalXRayImageStorageForProcessing,
    DigitalMammographyXRayImageStorageForPresentation,
    DigitalMammographyXRayImageStorageForProcessing, UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage, SecondaryCaptureImageStorage, XRayAngiographicImageStorage,
    XRayRadiofluoroscopicImageStorage, NuclearMedicineImageStorage,
    PositronEmissionTomographyImageStorage, EnhancedCTImageStorage, EnhancedMRImageStorage,
    BreastTomosynthesisImageStorage, MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage, VLPhotographicImageStorage,
]
MAX_CONTEXTS = 128


def storage_sop_classes() -> list[UID]:
    """Every storage SOP class pynetdicom knows, the common image classes first."""
    ordered = [UID(c) for c in COMMON_IMAGE_CLASSES]
    ordered += [cx.abstract_syntax for cx in StoragePresentationContexts]
    ordered += [cx.abstract_syntax for cx in AllStoragePresentationContexts]
    return list(dict.fromkeys(UID(u) for u in ordered))


def retrieve_storage_contexts(reserved: int = 1) -> list[PresentationContext]:
    """Storage contexts for C-GET: as many classes as fit beside ``reserved`` others."""
    budget = MAX_CONTEXTS - reserved
    common = [UID(c) for c in COMMON_IMAGE_CLASSES]
    contexts: list[PresentationContext] = []
    for uid in common:
        contexts.append(build_context(uid, UNCOMPRESSED))
        contexts.append(build_context(uid, LOSSLESS))
        contexts.append(build_context(uid, LOSSY))
    for uid in storage_sop_classes():
        if len(contexts) >= budget:
            break
        if uid not in common:
            contexts.append(build_context(uid, EVERY_SYNTAX))
    return contexts[:budget]


def scp_storage_contexts() -> list[PresentationContext]:
    """Contexts a Storage SCP supports: every storage class with every transfer syntax."""
    return [build_context(uid, EVERY_SYNTAX) for uid in storage_sop_classes()]
