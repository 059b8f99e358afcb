"""SOP Class UIDs by keyword, e.g. ``sop.Verification``, ``sop.CTImageStorage``.

Generated at import from pydicom's UID dictionary (PS3.6 Annex A), not written by hand, so
it follows the standard as pydicom ships it.
"""

from __future__ import annotations

from pydicom._uid_dict import UID_dictionary
from pydicom.uid import UID

#: Every SOP Class, Meta SOP Class and Well-known SOP Instance UID (retired ones
#: included) by its PS3.6 keyword.
SOP_CLASSES: dict[str, UID] = {
    info[4]: UID(uid)
    for uid, info in UID_dictionary.items()
    if info[1] in ("SOP Class", "Meta SOP Class", "Well-known SOP Instance") and info[4]
}

#: SOP classes newer than some pydicom releases know (PS3.6 Annex A).
for _keyword, _uid in {
    "LabelMapSegmentationStorage": "1.2.840.10008.5.1.4.1.1.66.7",
    "HeightMapSegmentationStorage": "1.2.840.10008.5.1.4.1.1.66.8",
    "WaveformPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.9.100.1",
    "WaveformAcquisitionPresentationStateStorage": "1.2.840.10008.5.1.4.1.1.9.100.2",
}.items():
    SOP_CLASSES.setdefault(_keyword, UID(_uid))

#: The names pynetdicom's ``sop_class`` module uses where they differ from PS3.6's
#: keywords, so that scripts port unchanged.
PYNETDICOM_NAMES = {
    "ModalityWorklistInformationFind": "ModalityWorklistInformationModelFind",
    "ColorPaletteInformationModelFind": "ColorPaletteQueryRetrieveInformationModelFind",
    "ColorPaletteInformationModelGet": "ColorPaletteQueryRetrieveInformationModelGet",
    "ColorPaletteInformationModelMove": "ColorPaletteQueryRetrieveInformationModelMove",
    "OphthlamicOpticalCoherenceTomographyBscanVolumeAnalysisStorage": (
        "OphthalmicOpticalCoherenceTomographyBscanVolumeAnalysisStorage"
    ),
    "PseudoColorSoftcopyPresentationStageStorage": "PseudoColorSoftcopyPresentationStateStorage",
    "RTBrachyApplicationSetupDeliveryInstructionsStorage": (
        "RTBrachyApplicationSetupDeliveryInstructionStorage"
    ),
    "RoboticArmRadiationRecordStorage": "RoboticRadiationRecordStorage",
    "VariableModalityLUTSoftcopyPresentationStageStorage": (
        "VariableModalityLUTSoftcopyPresentationStateStorage"
    ),
}
for _alias, _keyword in PYNETDICOM_NAMES.items():
    if _keyword in SOP_CLASSES:
        SOP_CLASSES.setdefault(_alias, SOP_CLASSES[_keyword])


def __getattr__(name: str) -> UID:
    try:
        return SOP_CLASSES[name]
    except KeyError:
        raise AttributeError(f"no SOP class with keyword {name!r} in PS3.6") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *SOP_CLASSES])
