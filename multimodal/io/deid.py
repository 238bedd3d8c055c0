"""De-identification: DICOM PS3.15 Annex E, as two profiles.

``basic`` applies every attribute row of Table E.1-1's Basic Application Level
Confidentiality Profile column, generated from the standard into
``assets/ps3.15-table-e1-1.json`` (:mod:`.deid_table`; edition named there), to the
dataset and every nested sequence item:

* ``X`` removed, ``Z`` emptied, ``D`` replaced by a dummy of its VR (on a sequence:
  every value inside replaced), ``U`` replaced by ``2.25.<decimal>``, a keyed hash of
  the original, so a study keeps its internal references consistent; where a row
  allows a choice (``X/Z/D`` ...) the one valid in every IOD is taken (:data:`CHOICE`);
* UIDs are found by tag, whatever VR the file wrote them with (explicit VR lets a
  file store a SOP Instance UID as text), and are written back as ``UI``; any UID the
  table does not list is replaced too, unless it names a class (:data:`KEEP_UIDS`);
* private tags, overlays and curves are removed, and any person name (VR PN) the
  table does not list, as a safety net;
* ``PatientIdentityRemoved``, the method and its code (113100) are recorded, and
  ``LongitudinalTemporalInformationModified = REMOVED`` when dates or times went.

``allowlist`` (the default of ``medany deid``, as hospital anonymizers do) keeps only
what the model and the image need (:data:`ALLOW`: pixels, geometry, LUTs, modality,
body part, view, laterality, remapped UIDs), empties the Type 2 patient and study
attributes and drops everything else.

``BurnedInAnnotation = YES`` raises :class:`BurnedInAnnotationWarning`: the pixels
themselves may show a name and neither profile cleans pixels.

``medany deid IN... --out DIR`` runs it in bulk (:func:`main`). Output names never
come from input values unchecked: a file is named by its remapped SOP Instance UID
when that is a valid UID, else by its input number, and every write is confined to
``--out`` (resolved and checked).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Literal, Sequence

from ..errors import InputError, require

# UIDs naming a class or encoding rather than an instance: kept verbatim (the safety net
# below replaces any other UID-valued attribute the table does not list).
KEEP_UIDS = frozenset({
    "SOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID", "ImplementationClassUID",
    "ReferencedSOPClassUID", "AffectedSOPClassUID", "RequestedSOPClassUID", "CodingSchemeUID",
    "ContextGroupExtensionCreatorUID", "SOPClassesInStudy", "ReferencedSOPClassUIDInFile",
    "RelatedGeneralSOPClassUID", "OriginalSpecializedSOPClassUID", "MappingResourceUID",
    "ReferencedTransferSyntaxUIDInFile", "ReferencedColorPaletteInstanceUID",
})
# Where a row allows a choice, take the one valid in every IOD (a dummy keeps a Type 1
# attribute, an empty value a Type 2 one); no identifying value survives either way.
CHOICE = {"Z/D": "D", "X/Z": "Z", "X/D": "D", "X/Z/D": "D", "X/Z/U*": "U*", "X/Z/U": "U", "Z/U": "U",
          "C": "D", "X/C": "D", "X/Z/C": "D"}
_DUMMY = {"PN": "ANONYMIZED", "LO": "ANONYMIZED", "SH": "ANONYMIZED", "LT": "ANONYMIZED",
          "ST": "ANONYMIZED", "UT": "ANONYMIZED", "UC": "ANONYMIZED", "CS": "ANONYMIZED", "AE": "ANONYMIZED",
          "UR": "", "DA": "19000101", "TM": "000000.00", "DT": "19000101000000.00", "AS": "000Y", "IS": "0",
          "DS": "0", "US": 0, "SS": 0, "UL": 0, "SL": 0, "FL": 0.0, "FD": 0.0, "UV": 0, "SV": 0, "AT": 0}
_TEMPORAL = frozenset({"DA", "TM", "DT"})
DEID_METHOD = {"basic": "PS3.15 E.1 Basic Application Level Confidentiality Profile (MedAny, Table E.1-1 {edition})",
               "allowlist": "MedAny allowlist: image, geometry and coded study context only (PS3.15 E.1 basis)"}
PROFILES = tuple(DEID_METHOD)
# The allowlist profile keeps only these (UIDs remapped, sequences filtered the same way);
# ALLOW_EMPTY are Type 2 attributes of the Patient and Study modules, kept present but empty.
ALLOW = frozenset({
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
    "FrameOfReferenceUID", "Modality", "BodyPartExamined", "ViewPosition", "ImageLaterality", "Laterality",
    "PatientOrientation", "SeriesNumber", "InstanceNumber", "AcquisitionNumber", "SamplesPerPixel",
    "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
    "PixelRepresentation", "PlanarConfiguration", "NumberOfFrames", "FrameIncrementPointer", "PixelAspectRatio",
    "PixelData", "PixelSpacing", "ImagerPixelSpacing", "PixelSpacingCalibrationType", "SliceThickness",
    "SpacingBetweenSlices", "ImagePositionPatient", "ImageOrientationPatient", "RescaleIntercept", "RescaleSlope",
    "RescaleType", "WindowCenter", "WindowWidth", "VOILUTFunction", "ModalityLUTSequence", "VOILUTSequence",
    "LUTDescriptor", "LUTData", "ModalityLUTType", "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor", "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
    "PresentationLUTShape", "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod",
    "BurnedInAnnotation", "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence",
    "PixelMeasuresSequence", "PlanePositionSequence", "PlaneOrientationSequence", "PixelValueTransformationSequence",
    "FrameVOILUTSequence", "ReferencedSOPClassUID", "ReferencedSOPInstanceUID", "ReferencedImageSequence",
    "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
    "LongitudinalTemporalInformationModified", "CodeValue", "CodingSchemeDesignator", "CodeMeaning",
})
ALLOW_EMPTY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
               "ReferringPhysicianName", "StudyID", "AccessionNumber")


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
        return dictionary_VR(elem.tag).split(" ")[0]
    except KeyError:
        return elem.VR


def _is_uid(elem) -> bool:
    return elem.VR == "UI" or _standard_vr(elem) == "UI"


class _Profile:
    """One pass over a dataset: what to do with each element, and what was done (for the summary attributes)."""

    def __init__(self, uids: UidMapper, name: str):
        from .deid_table import load_table

        if name not in PROFILES:
            raise ValueError(f"unknown de-identification profile {name!r}; choose one of {', '.join(PROFILES)}")
        self.uids, self.name, self.table = uids, name, load_table()
        self.temporal_changed = False

    def action(self, elem) -> str | None:
        """``X``/``Z``/``D``/``U``/``U*``/``K`` or ``None`` (keep, cleaning any sequence items)."""
        tag = elem.tag
        if tag.is_private:
            return "X"
        if self.name == "allowlist":
            if elem.keyword in ALLOW:
                return "U" if _is_uid(elem) and elem.keyword not in KEEP_UIDS else None
            return "Z" if elem.keyword in ALLOW_EMPTY else "X"
        action = self.table.action(int(tag))
        if action is not None:
            return CHOICE.get(action, action)
        if tag.group & 0xFF00 in (0x5000, 0x6000) and tag.group & 0x1 == 0:
            return "X"  # curves and overlays (data, comments, labels) are repeating groups
        if _is_uid(elem) and elem.keyword not in KEEP_UIDS:
            return "U"  # by tag: a UID written with a text VR is still a UID
        if elem.VR == "PN":
            return "X"  # safety net: a person name the table does not list
        return None

    def clean(self, ds) -> None:
        """Apply the profile to ``ds`` and every nested sequence item, in place."""
        for elem in list(ds):
            action = self.action(elem)
            if action in ("X", "Z", "D") and _standard_vr(elem) in _TEMPORAL | {"SQ"}:
                self.temporal_changed = True  # a date, time or a sequence that may hold them
            if action == "X":
                del ds[elem.tag]
            elif elem.VR == "SQ":
                if action == "Z":
                    elem.value = []
                elif action == "D":
                    for item in elem.value:
                        self.dummy(item)
                else:  # None, K, U*: the items are cleaned with the same profile
                    for item in elem.value:
                        self.clean(item)
            elif action == "Z":
                elem.value = b"" if elem.VR in _BINARY else ""
            elif action == "D":
                self.replace(ds, elem)
            elif action == "U" and elem.value:
                self.remap(ds, elem)

    def dummy(self, ds) -> None:
        """``D`` on a sequence: every value inside is replaced (UIDs remapped), structure kept."""
        for elem in list(ds):
            if elem.tag.is_private:
                del ds[elem.tag]
            elif elem.VR == "SQ":
                for item in elem.value:
                    self.dummy(item)
            elif _is_uid(elem) and elem.keyword not in KEEP_UIDS:
                if elem.value:
                    self.remap(ds, elem)
            elif elem.keyword not in KEEP_UIDS:
                self.replace(ds, elem)

    def replace(self, ds, elem) -> None:
        if _is_uid(elem):
            if elem.value:
                self.remap(ds, elem)
            return
        if elem.VR in _TEMPORAL:
            self.temporal_changed = True
        elem.value = b"" if elem.VR in _BINARY else _DUMMY.get(elem.VR, "ANONYMIZED")

    def remap(self, ds, elem) -> None:
        values = elem.value if elem.VM > 1 else [elem.value]
        mapped = [self.uids(v) for v in values]
        ds.add_new(elem.tag, "UI", mapped if elem.VM > 1 else mapped[0])


_BINARY = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})


def deidentify(ds, uids: UidMapper | None = None, profile: str = "basic"):
    """De-identify a pydicom ``Dataset`` in place and return it.

    ``profile="basic"`` applies every row of PS3.15 Table E.1-1 (:mod:`.deid_table`);
    ``"allowlist"`` keeps only the image, its geometry and coded study context
    (:data:`ALLOW`) and drops everything else. Warns :class:`BurnedInAnnotationWarning`
    when the file says its pixels carry burned-in text. ``uids`` should be shared
    across the files of one study so references between them stay consistent.
    """
    pydicom = require("pydicom")
    uids = uids or UidMapper()
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    rules = _Profile(uids, profile)
    rules.clean(ds)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        if "SOPInstanceUID" in ds and ds.SOPInstanceUID:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        elif meta.get("MediaStorageSOPInstanceUID"):
            meta.MediaStorageSOPInstanceUID = uids(meta.MediaStorageSOPInstanceUID)
        if meta.get("PrivateInformationCreatorUID"):
            meta.PrivateInformationCreatorUID = uids(meta.PrivateInformationCreatorUID)
        for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                        "ReceivingApplicationEntityTitle", "SourcePresentationAddress", "SendingPresentationAddress",
                        "ReceivingPresentationAddress", "PrivateInformation"):
            if keyword in meta:
                delattr(meta, keyword)
    ds.PatientIdentityRemoved = "YES"
    method = textwrap.wrap(DEID_METHOD[profile].format(edition=rules.table.edition), 64)  # LO: 64 a value
    ds.DeidentificationMethod = method if len(method) > 1 else method[0]
    if rules.temporal_changed:
        ds.LongitudinalTemporalInformationModified = "REMOVED"
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


def deidentify_bytes(data: bytes, uids: UidMapper | None = None, profile: str = "basic") -> bytes:
    """De-identify one DICOM file given as bytes; returns the new file's bytes."""
    return _deidentify_file(data, uids, profile)[1]


def _deidentify_file(data: bytes, uids: UidMapper | None, profile: str = "basic"):
    """``(de-identified dataset, its file bytes)`` for one DICOM file given as bytes."""
    from .dicom import parse_dicom

    uids = uids or UidMapper()
    ds = parse_dicom(data)
    if not str(ds.get("SOPClassUID", "") or "").strip():
        raise InputError("The DICOM file has no SOP Class UID, so it cannot be written as a valid file.",
                         code="no_sop_class")
    if not str(ds.get("SOPInstanceUID", "") or "").strip():  # give it one, derived from its content
        ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.1." + str(int(hashlib.sha256(data).hexdigest()[:24], 16))
    deidentify(ds, uids, profile)
    out = io.BytesIO()
    try:
        ds.save_as(out, enforce_file_format=True)
    except Exception as exc:  # pydicom raises ValueError/TypeError/AttributeError on values it cannot encode
        raise InputError(f"The de-identified file cannot be written ({type(exc).__name__}).",
                         code="unwritable") from None
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
            yield p  # missing and special files get their own outcome line


def main(argv: list[str] | None = None) -> int:
    """``medany deid IN... --out DIR``: the command line of :func:`deid`."""
    from ..cli_args import run_command

    return run_command(deid, argv, prog="medany deid", positional=("inputs",))


def deid(inputs: Sequence[str], out: str, profile: Literal["allowlist", "basic"] = "allowlist",
         key: str | None = None, show_paths: bool = False) -> int:
    """De-identify DICOM files (or folders of them) into one folder.

    Output files are named by their new SOP Instance UID, because original file
    names often contain patient names; for the same reason each input is named by
    its number in the sorted input order unless ``show_paths``. Every input gets
    one outcome line; a bad file is skipped, never the batch. Returns the process
    exit code: 0 when every input was written, 1 when any was refused.

    Args:
        inputs: DICOM files or folders
        out: output folder (created)
        profile: allowlist keeps only the image, its geometry and coded study context; basic applies every
            row of PS3.15 Table E.1-1 and keeps all other attributes
        key: secret for consistent UIDs across runs (default: random per run)
        show_paths: name skipped and flagged inputs by path (paths often carry patient names; default: by
            their number in the sorted input order)
    """
    from ..paths import atomic_write_bytes
    from .limits import DEFAULT_LIMITS
    from .loader import read_bytes

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    uids = UidMapper(key.encode() if key else None)
    written = failed = flagged = 0
    taken: set[str] = set()
    for i, path in enumerate(_inputs(inputs)):
        label = str(path) if show_paths else f"input {i + 1}"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BurnedInAnnotationWarning)
            try:
                ds, data = _deidentify_file(read_bytes(str(path), DEFAULT_LIMITS), uids, profile)
            except InputError as exc:
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
        print(f"{label}: written {name}")
    print(f"de-identified {written} file(s), skipped {failed}, burned-in annotation warnings {flagged}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
