"""FHIR resources, one path for every export: built as dicts, validated by ``fhir.resources``, bundled.

MedAny writes FHIR R4B (4.3.0, ``fhir.resources.R4B``): the R4 (4.0.1) resources it
uses (Bundle, DiagnosticReport, Observation, Composition, Condition,
MedicationStatement, AllergyIntolerance) have the same fields there, and
``fhir.resources`` ships no 4.0.1 models. The consult note's bundle
(:mod:`multimodal.consult_note`) and the imaging report's
(:mod:`multimodal.report.fhir`) both go through :func:`collection`, so every
resource either writes has been parsed by the FHIR models before it leaves.
"""

from __future__ import annotations

import html
import uuid
from typing import Sequence

from .errors import require

RELEASE = "R4B"
VERSION = "4.3.0"
SYSTEMS = {"HPO": "http://human-phenotype-ontology.org", "ICD-10": "http://hl7.org/fhir/sid/icd-10-cm",
           "DrugBank": "http://www.drugbank.ca", "USDA FDC": "https://fdc.nal.usda.gov",
           "IFCT": "https://www.ifct2017.com", "LOINC": "http://loinc.org", "DICOM": "http://dicom.nema.org/resources/"
           "ontology/DCM"}
"""Code systems of the knowledge base's sources (its citations' prefixes) and of the report's section codes."""
DEVICE = {"display": "MedAny (research software, not a medical device)"}
"""Who wrote a resource: MedAny's output is never a clinician's."""


def model(resource_type: str):
    """The ``fhir.resources`` class of ``resource_type`` (``"DiagnosticReport"``) in :data:`RELEASE`."""
    return require(f"fhir.resources.{RELEASE}", "all").get_fhir_model_class(resource_type)


def validated(resource: dict) -> dict:
    """``resource`` parsed by its FHIR model and written back as JSON-ready data (raises on any invalid field)."""
    cls = model(resource["resourceType"])
    return cls.model_validate(resource).model_dump(mode="json", exclude_none=True)


def new_url() -> str:
    """A ``urn:uuid:`` full URL: how resources of one collection Bundle refer to each other."""
    return f"urn:uuid:{uuid.uuid4()}"


def collection(resources: Sequence[dict | tuple[str, dict]]) -> dict:
    """A validated collection Bundle of ``resources`` (each a resource, or ``(full URL, resource)`` when others
    refer to it)."""
    entries = [{"fullUrl": r[0], "resource": r[1]} if isinstance(r, tuple) else {"fullUrl": new_url(), "resource": r}
               for r in resources]
    return validated({"resourceType": "Bundle", "type": "collection", "entry": entries})


def coding(codes: Sequence[str], text: str) -> dict:
    """A CodeableConcept of knowledge-base citations (``"HPO:0002315"``, ``"ICD-10 R51.9"``) with ``text``."""
    out = []
    for c in codes:
        source, _, code = c.replace("HPO:", "HPO HP:").partition(" ")
        out.append({"system": SYSTEMS.get(source, source), "code": code, "display": text})
    return {"coding": out, "text": text} if out else {"text": text}


def concept(system: str, code: str, display: str) -> dict:
    """A CodeableConcept of one code of :data:`SYSTEMS` (``concept("LOINC", "18748-4", ...)``)."""
    return {"coding": [{"system": SYSTEMS.get(system, system), "code": code, "display": display}], "text": display}


def narrative(sections: Sequence[tuple[str, Sequence[str]]]) -> dict:
    """A generated Narrative: each ``(heading, paragraphs)`` as an ``h3`` and its paragraphs, text escaped."""
    body = "".join(f"<h3>{html.escape(title)}</h3>" + "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
                   for title, paragraphs in sections)
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}
