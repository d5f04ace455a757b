"""Presentation contexts for the storage SOP classes (PS3.4 Annex B).

An association holds at most 128 presentation contexts (PS3.8 9.3.2.2), and the acceptor
picks one transfer syntax per context. For C-GET the requestor must propose every
storage SOP class the retrieve may bring back, and a peer sends an instance without
transcoding only if a context with the instance's own transfer syntax was accepted. So
the budget is spent in tiers:

- the most common image classes get a context for uncompressed data and one for each of
  the six compressed syntaxes archives most often hold (rarer ones are transcoded by the
  peer, if it can);
- the other common image classes get three (uncompressed, lossless, lossy);
- the non-image classes people retrieve (RT, SR, presentation states, key objects,
  encapsulated documents, waveforms, segmentations) and then every other storage class
  get one with every syntax, as far as the budget goes.

What a peer could not send over these is asked for again over associations offering
one context per (SOP class, transfer syntax) for it (:mod:`pacskit.syntax_retry`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from functools import cache

from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AllStoragePresentationContexts, StoragePresentationContexts, build_context
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # made by globals()
    BasicTextSRStorage,
    BreastTomosynthesisImageStorage,
    ColorSoftcopyPresentationStateStorage,
    Comprehensive3DSRStorage,
    ComprehensiveSRStorage,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalMammographyXRayImageStorageForPresentation,
    DigitalMammographyXRayImageStorageForProcessing,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    EncapsulatedCDAStorage,
    EncapsulatedPDFStorage,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    EnhancedPETImageStorage,
    EnhancedSRStorage,
    EnhancedXAImageStorage,
    GeneralECGWaveformStorage,
    GrayscaleSoftcopyPresentationStateStorage,
    KeyObjectSelectionDocumentStorage,
    LegacyConvertedEnhancedCTImageStorage,
    LegacyConvertedEnhancedMRImageStorage,
    MammographyCADSRStorage,
    MRImageStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameSingleBitSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    NuclearMedicineImageStorage,
    OphthalmicPhotography8BitImageStorage,
    ParametricMapStorage,
    PositronEmissionTomographyImageStorage,
    RawDataStorage,
    RTBeamsTreatmentRecordStorage,
    RTDoseStorage,
    RTImageStorage,
    RTIonPlanStorage,
    RTPlanStorage,
    RTStructureSetStorage,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
    SpatialRegistrationStorage,
    TwelveLeadECGWaveformStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    VLEndoscopicImageStorage,
    VLMicroscopicImageStorage,
    VLPhotographicImageStorage,
    XRay3DAngiographicImageStorage,
    XRayAngiographicImageStorage,
    XRayRadiationDoseSRStorage,
    XRayRadiofluoroscopicImageStorage,
)

UNCOMPRESSED: list[str | UID] = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                ExplicitVRBigEndian]
LOSSLESS: list[str | UID] = [JPEG2000Lossless, JPEGLSLossless, JPEGLosslessSV1, JPEGLossless, RLELossless]
LOSSY: list[str | UID] = [JPEGBaseline8Bit, JPEGExtended12Bit, JPEG2000, JPEGLSNearLossless]
EVERY_SYNTAX: list[str | UID] = UNCOMPRESSED + LOSSLESS + LOSSY

MOST_COMMON_IMAGE_CLASSES = [
    CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage, UltrasoundImageStorage,
    ComputedRadiographyImageStorage, DigitalXRayImageStorageForPresentation,
    DigitalMammographyXRayImageStorageForPresentation,
]
MOST_COMMON_SYNTAXES: list[list[str | UID]] = [
    [ExplicitVRLittleEndian, ImplicitVRLittleEndian],
    [JPEGLSLossless],
    [JPEG2000Lossless],
    [JPEGLosslessSV1],
    [RLELossless],
    [JPEGBaseline8Bit],
    [JPEG2000],
]
COMMON_IMAGE_CLASSES = [
    *MOST_COMMON_IMAGE_CLASSES,
    DigitalXRayImageStorageForProcessing, DigitalMammographyXRayImageStorageForProcessing,
    UltrasoundMultiFrameImageStorage, XRayAngiographicImageStorage,
    XRayRadiofluoroscopicImageStorage, NuclearMedicineImageStorage,
    PositronEmissionTomographyImageStorage, EnhancedCTImageStorage, EnhancedMRImageStorage,
    BreastTomosynthesisImageStorage, MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage, VLPhotographicImageStorage,
]
COMMON_OTHER_CLASSES = [
    RTImageStorage, RTDoseStorage, RTStructureSetStorage, RTPlanStorage, RTIonPlanStorage,
    RTBeamsTreatmentRecordStorage, BasicTextSRStorage, EnhancedSRStorage, ComprehensiveSRStorage,
    Comprehensive3DSRStorage, KeyObjectSelectionDocumentStorage, XRayRadiationDoseSRStorage,
    MammographyCADSRStorage, GrayscaleSoftcopyPresentationStateStorage,
    ColorSoftcopyPresentationStateStorage, EncapsulatedPDFStorage, EncapsulatedCDAStorage,
    TwelveLeadECGWaveformStorage, GeneralECGWaveformStorage, SegmentationStorage,
    SpatialRegistrationStorage, RawDataStorage, ParametricMapStorage,
    LegacyConvertedEnhancedCTImageStorage, LegacyConvertedEnhancedMRImageStorage,
    EnhancedPETImageStorage, EnhancedXAImageStorage, XRay3DAngiographicImageStorage,
    MultiFrameSingleBitSecondaryCaptureImageStorage, VLEndoscopicImageStorage,
    VLMicroscopicImageStorage, OphthalmicPhotography8BitImageStorage,
]
MAX_CONTEXTS = 128


def storage_sop_classes() -> list[UID]:
    """Every storage SOP class pynetdicom knows, the common classes first."""
    ordered = [UID(c) for c in (*COMMON_IMAGE_CLASSES, *COMMON_OTHER_CLASSES)]
    # pynetdicom's storage contexts all have an abstract syntax (it is Optional on the class)
    ordered += [cx.abstract_syntax for cx in StoragePresentationContexts if cx.abstract_syntax is not None]
    ordered += [cx.abstract_syntax for cx in AllStoragePresentationContexts if cx.abstract_syntax is not None]
    return list(dict.fromkeys(UID(u) for u in ordered))


def retrieve_storage_contexts(reserved: int = 1) -> list[PresentationContext]:
    """Storage contexts for C-GET, in the tiers of the module docstring, as many as fit
    beside ``reserved`` others (built once; pynetdicom proposes copies)."""
    return list(_retrieve_storage_contexts(reserved))


@cache
def _retrieve_storage_contexts(reserved: int) -> tuple[PresentationContext, ...]:
    covered = {UID(c) for c in COMMON_IMAGE_CLASSES}
    proposals: Iterator[tuple[str, Sequence[str]]] = itertools.chain(
        ((uid, syntaxes) for uid in MOST_COMMON_IMAGE_CLASSES for syntaxes in MOST_COMMON_SYNTAXES),
        ((uid, syntaxes) for uid in COMMON_IMAGE_CLASSES[len(MOST_COMMON_IMAGE_CLASSES):]
         for syntaxes in (UNCOMPRESSED, LOSSLESS, LOSSY)),
        ((uid, EVERY_SYNTAX) for uid in storage_sop_classes() if uid not in covered),
    )
    return tuple(_Proposal.of(uid, syntaxes)
                 for uid, syntaxes in itertools.islice(proposals, MAX_CONTEXTS - reserved))


def single_syntax_contexts(proposals: list[tuple[str, str]], reserved: int = 1) -> list[list[PresentationContext]]:
    """One context per (SOP class, transfer syntax) of ``proposals``, in their order,
    split into as many associations as the limit of 128 contexts needs (``reserved``
    left free in each). A peer that sends every instance of a class over the first
    context it accepted for that class sends over the first one proposed here."""
    contexts: list[PresentationContext] = [_Proposal.of(uid, [syntax]) for uid, syntax in dict.fromkeys(proposals)]
    step = MAX_CONTEXTS - reserved
    return [contexts[start:start + step] for start in range(0, len(contexts), step)]


class _Proposal(PresentationContext):
    """A proposed presentation context that copies cheaply: pynetdicom deep-copies every
    proposed context on each association, UID by UID (about 25 ms for 127 contexts);
    UIDs are immutable, so the copy shares them."""

    @classmethod
    def of(cls, abstract_syntax: str, transfer_syntaxes: Sequence[str]) -> _Proposal:
        proposal = cls()
        syntaxes: list[str | UID] = list(transfer_syntaxes)
        proposal.__dict__.update(build_context(abstract_syntax, syntaxes).__dict__)
        return proposal

    def __deepcopy__(self, memo: dict[int, object]) -> _Proposal:
        copy = _Proposal()
        copy.__dict__.update(self.__dict__)
        copy._transfer_syntax = list(self._transfer_syntax)
        return copy


def scp_storage_contexts() -> list[PresentationContext]:
    """Contexts a Storage SCP supports: every storage class with every transfer syntax."""
    return list(_scp_storage_contexts())


@cache
def _scp_storage_contexts() -> tuple[PresentationContext, ...]:
    return tuple(build_context(uid, EVERY_SYNTAX) for uid in storage_sop_classes())
