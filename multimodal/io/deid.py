"""De-identification: DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile.

What it does to a dataset (recursively, into every nested sequence item):

* attributes of the profile table (:data:`PROFILE`) are removed (``X``),
  emptied (``Z``) or given a dummy value (``D``);
* every UID that identifies an instance (not a SOP class or transfer syntax) is
  replaced by ``2.25.<decimal>``, a keyed hash of the original, so a study keeps
  its internal references consistent (<= 64 characters, as the standard requires).
  UIDs are found by tag, whatever VR the file wrote them with (explicit VR lets a
  file store a SOP Instance UID as text), and are written back as ``UI``;
* private tags, overlays and curves (groups 60xx / 50xx) are removed, and any
  remaining person name (VR PN) is removed as a safety net;
* ``PatientIdentityRemoved = YES`` and the method code (113100) are recorded;
* ``BurnedInAnnotation = YES`` raises :class:`BurnedInAnnotationWarning`: the
  pixels themselves may show a name and this profile does not clean pixels.

``medany deid IN... --out DIR`` runs it in bulk (:func:`main`). Output names never
come from input values unchecked: a file is named by its remapped SOP Instance UID
when that is a valid UID, else by its input number, and every write is confined to
``--out`` (resolved and checked).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import re
import secrets
import sys
import warnings
from pathlib import Path

from ..errors import InputError, require

# Keyword -> action ("X" remove, "Z" empty, "D" dummy, "U" new UID). Where the
# standard allows a choice (e.g. X/Z/D) the strongest that keeps files valid is taken.
PROFILE: dict[str, str] = {
    # Patient
    "PatientName": "Z", "PatientID": "Z", "PatientBirthDate": "Z", "PatientSex": "Z",
    "PatientAge": "X", "PatientBirthTime": "X", "PatientBirthName": "X", "PatientMotherBirthName": "X",
    "OtherPatientIDs": "X", "OtherPatientIDsSequence": "X", "OtherPatientNames": "X",
    "PatientAddress": "X", "PatientTelephoneNumbers": "X", "PatientComments": "X",
    "PatientInsurancePlanCodeSequence": "X", "PatientPrimaryLanguageCodeSequence": "X",
    "PatientReligiousPreference": "X", "PatientSize": "X", "PatientWeight": "X", "PatientState": "X",
    "PatientTransportArrangements": "X", "PatientInstitutionResidence": "X", "IssuerOfPatientID": "X",
    "MilitaryRank": "X", "BranchOfService": "X", "MedicalRecordLocator": "X", "MedicalAlerts": "X",
    "Allergies": "X", "CountryOfResidence": "X", "RegionOfResidence": "X", "EthnicGroup": "X",
    "Occupation": "X", "SmokingStatus": "X", "AdditionalPatientHistory": "X", "PregnancyStatus": "X",
    "LastMenstrualDate": "X", "SpecialNeeds": "X", "ReferencedPatientSequence": "X",
    "ReferencedPatientAliasSequence": "X", "ResponsiblePerson": "X", "ResponsibleOrganization": "X",
    "PatientSexNeutered": "X",
    # Study / visit / order
    "StudyDate": "Z", "StudyTime": "Z", "AccessionNumber": "Z", "StudyID": "Z",
    "StudyDescription": "X", "StudyComments": "X", "StudyIDIssuer": "X",
    "SeriesDate": "X", "SeriesTime": "X", "SeriesDescription": "X", "AcquisitionDate": "X",
    "AcquisitionTime": "X", "AcquisitionDateTime": "X", "ContentDate": "Z", "ContentTime": "Z",
    "InstanceCreationDate": "X", "InstanceCreationTime": "X", "OverlayDate": "X", "OverlayTime": "X",
    "CurveDate": "X", "CurveTime": "X", "TimezoneOffsetFromUTC": "X", "DateOfSecondaryCapture": "X",
    "AdmissionID": "X", "AdmittingDate": "X", "AdmittingTime": "X", "AdmittingDiagnosesDescription": "X",
    "AdmittingDiagnosesCodeSequence": "X", "IssuerOfAdmissionID": "X", "DischargeDiagnosisDescription": "X",
    "ServiceEpisodeID": "X", "ServiceEpisodeDescription": "X", "IssuerOfServiceEpisodeID": "X",
    "CurrentPatientLocation": "X", "VisitComments": "X", "ReasonForStudy": "X",
    "ReasonForTheImagingServiceRequest": "X", "RequestingPhysician": "X", "RequestingService": "X",
    "RequestedProcedureDescription": "X", "RequestedProcedureID": "X", "RequestedProcedureComments": "X",
    "RequestedProcedureLocation": "X", "RequestedContrastAgent": "X", "RequestAttributesSequence": "X",
    "ImagingServiceRequestComments": "X", "PlacerOrderNumberImagingServiceRequest": "Z",
    "FillerOrderNumberImagingServiceRequest": "Z", "OrderEnteredBy": "X", "OrderEntererLocation": "X",
    "OrderCallbackPhoneNumber": "X", "ReferencedStudySequence": "X",
    "ReferencedPerformedProcedureStepSequence": "X", "PerformedProcedureStepID": "X",
    "PerformedProcedureStepDescription": "X", "PerformedProcedureStepStartDate": "X",
    "PerformedProcedureStepStartTime": "X", "PerformedProcedureStepEndDate": "X",
    "PerformedProcedureStepEndTime": "X", "CommentsOnThePerformedProcedureStep": "X",
    "PerformedLocation": "X", "ScheduledProcedureStepDescription": "X", "ScheduledProcedureStepLocation": "X",
    "ScheduledProcedureStepStartDate": "X", "ScheduledProcedureStepStartTime": "X",
    "ScheduledProcedureStepEndDate": "X", "ScheduledProcedureStepEndTime": "X",
    "ScheduledPatientInstitutionResidence": "X", "ScheduledStudyLocation": "X",
    "ScheduledStudyLocationAETitle": "X", "ProtocolName": "X", "AcquisitionComments": "X",
    "AcquisitionContextSequence": "X", "AcquisitionProtocolDescription": "X",
    # Staff
    "ReferringPhysicianName": "Z", "ReferringPhysicianAddress": "X", "ReferringPhysicianTelephoneNumbers": "X",
    "ReferringPhysicianIdentificationSequence": "X", "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X", "PerformingPhysicianName": "X",
    "PerformingPhysicianIdentificationSequence": "X", "NameOfPhysiciansReadingStudy": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X", "OperatorsName": "X",
    "OperatorIdentificationSequence": "X", "ScheduledPerformingPhysicianName": "X",
    "ScheduledPerformingPhysicianIdentificationSequence": "X", "HumanPerformerName": "X",
    "HumanPerformerOrganization": "X", "ActualHumanPerformersSequence": "X",
    "ScheduledHumanPerformersSequence": "X", "ContentCreatorName": "Z",
    "ContentCreatorIdentificationCodeSequence": "X", "VerifyingObserverName": "D",
    "VerifyingObserverIdentificationCodeSequence": "Z", "VerifyingOrganization": "X",
    "AuthorObserverSequence": "X", "ParticipantSequence": "X", "PersonName": "D", "PersonAddress": "X",
    "PersonTelephoneNumbers": "X", "PersonIdentificationCodeSequence": "X", "ReviewerName": "X",
    "PhysicianApprovingInterpretation": "X", "InterpretationRecorder": "X", "InterpretationTranscriber": "X",
    "InterpretationAuthor": "X", "InterpretationApproverSequence": "X", "InterpretationText": "X",
    "InterpretationDiagnosisDescription": "X", "InterpretationIDIssuer": "X", "ResultsIDIssuer": "X",
    "ResultsComments": "X", "ResultsDistributionListSequence": "X", "DistributionName": "X",
    "DistributionAddress": "X", "NamesOfIntendedRecipientsOfResults": "X",
    "IntendedRecipientsOfResultsIdentificationSequence": "X", "Impressions": "X",
    # Institution / equipment
    "InstitutionName": "X", "InstitutionAddress": "X", "InstitutionCodeSequence": "X",
    "InstitutionalDepartmentName": "X", "StationName": "X", "DeviceSerialNumber": "X",
    "DeviceDescription": "X", "DetectorID": "X", "GantryID": "X", "GeneratorID": "X", "CassetteID": "X",
    "PlateID": "X", "ModifyingDeviceID": "X", "ModifyingDeviceManufacturer": "X",
    "PerformedStationAETitle": "X", "PerformedStationName": "X", "PerformedStationNameCodeSequence": "X",
    "PerformedStationGeographicLocationCodeSequence": "X", "ScheduledStationAETitle": "X",
    "ScheduledStationName": "X", "ScheduledStationNameCodeSequence": "X",
    "ScheduledStationGeographicLocationCodeSequence": "X", "DateOfLastCalibration": "X",
    "TimeOfLastCalibration": "X", "SourceApplicationEntityTitle": "X", "CustodialOrganizationSequence": "X",
    "InsurancePlanIdentification": "X",
    # Free text, signatures, icons, provenance
    "ImageComments": "X", "FrameComments": "X", "ImagePresentationComments": "X", "TextComments": "X",
    "TextString": "X", "IdentifyingComments": "X", "DerivationDescription": "X",
    "AcquisitionDeviceProcessingDescription": "X", "ContributionDescription": "X", "ContributionDateTime": "X",
    "TopicAuthor": "X", "TopicKeywords": "X", "TopicSubject": "X", "TopicTitle": "X", "Arbitrary": "X",
    "DigitalSignaturesSequence": "X", "ReferencedDigitalSignatureSequence": "X",
    "ReferencedSOPInstanceMACSequence": "X", "MAC": "X", "IconImageSequence": "X",
    "ModifiedAttributesSequence": "X", "OriginalAttributesSequence": "X", "ModifiedImageDescription": "X",
    "GraphicAnnotationSequence": "X", "DataSetTrailingPadding": "X",
    "ConfidentialityConstraintOnPatientDataDescription": "X",
}

# UIDs naming a class or encoding rather than an instance: kept verbatim.
KEEP_UIDS = frozenset({
    "SOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID", "ImplementationClassUID",
    "ReferencedSOPClassUID", "AffectedSOPClassUID", "RequestedSOPClassUID", "CodingSchemeUID",
    "ContextGroupExtensionCreatorUID", "PrivateInformationCreatorUID", "SOPClassesInStudy",
    "ReferencedSOPClassUIDInFile", "RelatedGeneralSOPClassUID", "OriginalSpecializedSOPClassUID",
    "MappingResourceUID", "CodingSchemeUID", "ReferencedTransferSyntaxUIDInFile",
})
_DUMMY = {"PN": "ANONYMIZED", "LO": "ANONYMIZED", "SH": "ANONYMIZED", "LT": "ANONYMIZED",
          "ST": "ANONYMIZED", "UT": "ANONYMIZED", "CS": "ANONYMIZED", "DA": "19000101",
          "TM": "000000.00", "DT": "19000101000000.00"}
DEID_METHOD = "PS3.15 E.1 Basic Application Level Confidentiality Profile (MedAny)"


class BurnedInAnnotationWarning(UserWarning):
    """The pixels may contain burned-in identifying text; the metadata profile cannot remove it."""


class UidMapper:
    """Deterministic ``original UID -> 2.25.<n>`` under a secret key.

    The same key maps the same UID the same way across files and runs (so a
    study de-identified in two batches still links up); without the key the
    mapping cannot be reversed or recomputed.
    """

    def __init__(self, key: bytes | None = None):
        self.key = key if key is not None else secrets.token_bytes(32)

    def __call__(self, uid: str) -> str:
        digest = hmac.new(self.key, str(uid).strip().encode("ascii", "replace"), hashlib.sha256).digest()
        return "2.25." + str(int.from_bytes(digest[:16], "big"))  # <= 5 + 39 = 44 chars


def _standard_vr(elem) -> str:
    """The VR the standard's dictionary gives ``elem``'s tag (the file's own VR when the tag is unknown)."""
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(elem.tag)
    except KeyError:
        return elem.VR


def _tag_action(elem) -> str | None:
    keyword = elem.keyword
    if elem.tag.is_private:
        return "X"
    if elem.tag.group & 0xFF00 in (0x5000, 0x6000) and elem.tag.group & 0x1 == 0:
        return "X"  # curves and overlays (data, comments, labels) are repeating groups
    if keyword in PROFILE:
        return PROFILE[keyword]
    if (elem.VR == "UI" or _standard_vr(elem) == "UI") and keyword not in KEEP_UIDS:
        return "U"  # by tag: a UID written with a text VR is still a UID
    if elem.VR == "PN":
        return "X"  # any person name the table did not list
    return None


def _clean(ds, uids: UidMapper) -> None:
    """Apply the profile to ``ds`` and every nested sequence item, in place."""
    for elem in list(ds):
        action = _tag_action(elem)
        if action == "X":
            del ds[elem.tag]
            continue
        if elem.VR == "SQ":
            if action == "Z":
                elem.value = []
            else:
                for item in elem.value:
                    _clean(item, uids)
            continue
        if action == "Z":
            elem.value = ""
        elif action == "D":
            elem.value = _DUMMY.get(elem.VR, "")
        elif action == "U" and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            mapped = [uids(v) for v in values]
            ds.add_new(elem.tag, "UI", mapped if elem.VM > 1 else mapped[0])


def deidentify(ds, uids: UidMapper | None = None):
    """De-identify a pydicom ``Dataset`` in place and return it.

    Warns :class:`BurnedInAnnotationWarning` when the file says its pixels
    carry burned-in text. ``uids`` should be shared across the files of one
    study so references between them stay consistent.
    """
    pydicom = require("pydicom")
    uids = uids or UidMapper()
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    _clean(ds, uids)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        elif "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = uids(meta.MediaStorageSOPInstanceUID)
        for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                        "ReceivingApplicationEntityTitle", "PrivateInformation"):
            if keyword in meta:
                delattr(meta, keyword)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEID_METHOD
    code = pydicom.Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = [code]
    if burned == "YES":
        warnings.warn(
            "This image is marked as having burned-in annotation: text in the pixels may "
            "identify the patient and was not removed.",
            BurnedInAnnotationWarning,
            stacklevel=2,
        )
    return ds


def deidentify_bytes(data: bytes, uids: UidMapper | None = None) -> bytes:
    """De-identify one DICOM file given as bytes; returns the new file's bytes."""
    return _deidentify_file(data, uids)[1]


def _deidentify_file(data: bytes, uids: UidMapper | None):
    """``(de-identified dataset, its file bytes)`` for one DICOM file given as bytes."""
    from .dicom import parse_dicom

    ds = parse_dicom(data)
    deidentify(ds, uids)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return ds, out.getvalue()


_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def output_name(ds, index: int) -> str:
    """The file name for a de-identified dataset: its SOP Instance UID when that is a valid UID, else a counter."""
    uid = str(ds.get("SOPInstanceUID", "") or "")
    return f"{uid}.dcm" if len(uid) <= 64 and _UID.fullmatch(uid) else f"file{index + 1}.dcm"


def confined(out: Path, name: str) -> Path:
    """``out / name``, refused unless it is a plain file name directly inside ``out``."""
    target = (out / name).resolve()
    if target.parent != out.resolve() or "\x00" in name:
        raise InputError("Refusing an output file name that leaves the output folder.")
    return target


def _inputs(paths: list[str]):
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file())
        else:
            yield p


def main(argv: list[str] | None = None) -> int:
    """``medany deid IN... --out DIR``: de-identify DICOM files (or folders of them).

    Output files are named by their new SOP Instance UID, because original file
    names often contain patient names; for the same reason problems name an
    input by its number in the sorted input order unless ``--show-paths``. Returns the process exit code: 0 when
    every input was written, 1 when any was refused.
    """
    parser = argparse.ArgumentParser(prog="medany deid", description=main.__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="DICOM files or folders")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--key", default=None,
                        help="secret for consistent UIDs across runs (default: random per run)")
    parser.add_argument("--show-paths", action="store_true",
                        help="name skipped and flagged inputs by path (paths often carry patient names; "
                             "default: by their number in the sorted input order)")
    args = parser.parse_args(argv)
    from ..paths import atomic_write_bytes

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    uids = UidMapper(args.key.encode() if args.key else None)
    written = failed = flagged = 0
    taken: set[str] = set()
    for i, path in enumerate(_inputs(args.inputs)):
        label = str(path) if args.show_paths else f"input {i + 1}"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BurnedInAnnotationWarning)
            try:
                ds, data = _deidentify_file(path.read_bytes(), uids)
            except (InputError, OSError) as exc:
                failed += 1
                print(f"{label}: skipped: {exc}", file=sys.stderr)
                continue
        name = output_name(ds, i)
        if name in taken:  # two inputs with one SOP Instance UID: keep both
            name = f"{name[:-4]}-{i + 1}.dcm"
        taken.add(name)
        atomic_write_bytes(confined(out, name), data)
        written += 1
        if any(issubclass(w.category, BurnedInAnnotationWarning) for w in caught):
            flagged += 1
            print(f"{label}: WARNING burned-in annotation, review the pixels before sharing {name}",
                  file=sys.stderr)
    print(f"de-identified {written} file(s), skipped {failed}, burned-in annotation warnings {flagged}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
