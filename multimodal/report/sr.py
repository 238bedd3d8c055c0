"""The report as a DICOM Comprehensive SR (``highdicom``), in the study it reports on, with its evidence inside.

The content tree follows TID 2000 (Basic Diagnostic Imaging Report): the root
``Diagnostic Imaging Report`` (LOINC 18748-4) with its language and a device
observer (MedAny, never a person), then one CONTAINER per section (Request when
there is a clinical question, Current Procedure Descriptions = Technique,
Findings, Impressions, and Limitations, a MedAny local code ``99MEDANY``). Each
sentence is a TEXT item; what it rests on hangs below it as INFERRED FROM items:
an IMAGE reference to the de-identified instance (DCM 121112 "Source of
Measurement") when it rests on that image, and a TEXT item per piece of evidence
(``Image 1 DICOM header BodyPartExamined = CHEST``, a knowledge row ...).

The SR inherits patient and study from the de-identified headers
(:mod:`.study`: emptied), so it carries no identifier of the source. It is
marked COMPLETE, UNVERIFIED and PRELIMINARY: nobody accountable has signed it.
:func:`read_back` checks the written bytes the way a receiver would: pydicom
parses them, ``highdicom`` rebuilds the document (validating every content
item), and every sentence of the report must be found in it.
"""

from __future__ import annotations

import io
from typing import Sequence

from ..errors import MedAnyError, require
from .document import SECTIONS, ImagingReport, Sentence

LOCAL_SCHEME = "99MEDANY"
MANUFACTURER = "MedAny"
SERIES_DESCRIPTION = "MedAny imaging report (research use, unverified)"


class ReportExportError(MedAnyError, RuntimeError):
    """A report export failed its own check (an SR that does not read back with its text)."""


def _codes():
    hd = require("highdicom", "all")
    from pydicom.sr.codedict import codes

    local = {"limitations": hd.sr.CodedConcept("LIMITATIONS", LOCAL_SCHEME, "Limitations"),
             "limitation": hd.sr.CodedConcept("LIMITATION", LOCAL_SCHEME, "Limitation"),
             "evidence": hd.sr.CodedConcept("EVIDENCE", LOCAL_SCHEME, "Evidence")}
    sections = {"technique": (codes.DCM.CurrentProcedureDescriptions, codes.DCM.ProcedureDescription),
                "findings": (codes.DCM.Findings, codes.DCM.Finding),
                "impression": (codes.DCM.Impressions, codes.DCM.Impression),
                "limitations": (local["limitations"], local["limitation"])}
    return hd, codes, sections, local


def build_sr(report: ImagingReport, headers: Sequence):
    """The report as a ``highdicom.sr.ComprehensiveSR`` (``headers``: each image's de-identified header, None for
    a photo). Without any DICOM the SR opens a study of its own."""
    hd, codes, sections, local = _codes()
    from pydicom.uid import generate_uid

    evidence = [h for h in headers if h is not None]
    own_study = not evidence
    if own_study:
        evidence = [_empty_study()]
    refs = {r.label: r for r in report.study if r.sop_uid}
    relation = hd.sr.RelationshipTypeValues
    root = hd.sr.ContainerContentItem(name=codes.LN.DiagnosticImagingReport, template_id="2000")
    items = list(hd.sr.LanguageOfContentItemAndDescendants(
        hd.sr.CodedConcept("en-US", "RFC5646", "English (United States)")))
    device = hd.sr.DeviceObserverIdentifyingAttributes(uid=generate_uid(entropy_srcs=["MedAny report device"]),
                                                       name=MANUFACTURER, manufacturer_name=MANUFACTURER)
    items += list(hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        codes.cid270.Device, device)))
    if report.question:
        request = hd.sr.ContainerContentItem(name=codes.DCM.Request, relationship_type=relation.CONTAINS)
        request.ContentSequence = [hd.sr.TextContentItem(codes.DCM.Request, report.question, relation.CONTAINS)]
        items.append(request)
    for name in SECTIONS:
        container_code, item_code = sections[name]
        container = hd.sr.ContainerContentItem(name=container_code, relationship_type=relation.CONTAINS)
        container.ContentSequence = [_sentence(hd, item_code, local["evidence"], s, refs) for s in
                                     report.section(name)]
        items.append(container)
    root.ContentSequence = items
    schemes = require("highdicom.coding_schemes", "all")
    local_scheme = schemes.CodingSchemeIdentificationItem(LOCAL_SCHEME, name="MedAny local codes",
                                                          responsible_organization="MedAny project")
    sr = hd.sr.ComprehensiveSR(evidence=evidence, content=root, series_instance_uid=generate_uid(None),
                               series_number=900, sop_instance_uid=generate_uid(None), instance_number=1,
                               manufacturer=MANUFACTURER, is_complete=True, is_final=False, is_verified=False,
                               coding_schemes=[local_scheme], series_description=SERIES_DESCRIPTION,
                               record_evidence=not own_study,
                               specific_character_set="ISO_IR 192")  # UTF-8: the sentences are any language
    if own_study and "CurrentRequestedProcedureEvidenceSequence" in sr:
        del sr.CurrentRequestedProcedureEvidenceSequence  # the stand-in header is no instance anyone holds
    return sr


def _sentence(hd, item_code, evidence_code, sentence: Sentence, refs: dict):
    """A TEXT item for ``sentence``, with INFERRED FROM items for what it rests on."""
    relation = hd.sr.RelationshipTypeValues
    item = hd.sr.TextContentItem(item_code, sentence.text, relation.CONTAINS)
    below = []
    for label in dict.fromkeys(t.label for t in sentence.ties):
        ref = refs.get(label)
        if ref is not None:
            below.append(hd.sr.ImageContentItem(
                hd.sr.CodedConcept("121112", "DCM", "Source of Measurement"), ref.sop_class_uid, ref.sop_uid,
                relationship_type=relation.INFERRED_FROM))
    below += [hd.sr.TextContentItem(evidence_code, t.describe(), relation.INFERRED_FROM) for t in sentence.ties]
    if below:
        item.ContentSequence = below
    return item


def _empty_study():
    """A header for a report of photos only: a new study, nobody's patient data."""
    from pydicom import Dataset
    from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (generate_uid(None) for _ in range(3))
    ds.SOPClassUID = SecondaryCaptureImageStorage
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
                    "StudyDate", "StudyTime", "ReferringPhysicianName"):
        setattr(ds, keyword, "")
    return ds


def sr_bytes(report: ImagingReport, headers: Sequence) -> bytes:
    """The SR file's bytes, checked by :func:`read_back` before they are returned."""
    buffer = io.BytesIO()
    build_sr(report, headers).save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    texts = read_back(data)
    missing = [s.text for _, s in report.sentences() if s.text not in texts]
    if missing:
        raise ReportExportError(f"The DICOM SR lost {len(missing)} sentence(s) of the report when read back.")
    return data


def read_back(data: bytes) -> list[str]:
    """Every TEXT value of the SR in ``data``, in document order, after pydicom parsed it and ``highdicom`` rebuilt
    it as a Comprehensive SR (which checks each content item)."""
    pydicom = require("pydicom", "all")
    hd = require("highdicom", "all")
    ds = pydicom.dcmread(io.BytesIO(data))
    document = hd.sr.ComprehensiveSR.from_dataset(ds)
    texts: list[str] = []

    def walk(items):
        for item in items:
            if item.ValueType == "TEXT":
                texts.append(str(item.TextValue))
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(document.content)
    return texts
