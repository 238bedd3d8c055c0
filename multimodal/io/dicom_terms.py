"""The defined terms of the coded DICOM fields the model reads; anything else becomes ``"unknown"``.

A coded string is typed by whoever set up the modality; a header can carry a
patient's name in Body Part Examined. Only values from these lists reach the
prompt, the demo and the evidence:

- :data:`MODALITIES`: Modality (0008,0060), PS3.3 C.7.3.1.1.1 (current and common retired terms);
- :data:`BODY_PARTS`: Body Part Examined (0018,0015), PS3.16 Annex L;
- :data:`VIEWS`: View Position (0018,5101), PS3.3 C.8.11.5.1.1, plus the mammography
  view abbreviations of CID 4014 and ``LATERAL`` (common, side unstated).

Values are compared after upper-casing and dropping spaces, hyphens and underscores
(``"whole body"`` -> ``WHOLEBODY``, ``"C-SPINE"`` -> ``CSPINE``).
"""

from __future__ import annotations

import re

UNKNOWN = "unknown"

MODALITIES = frozenset("""
AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DG DMS DOC DX ECG EEG EMG EOG EPS ES FID GM HC HD IO IOL IVOCT IVUS
KER KO LEN LS M3D MG MR NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PA PLAN POS PR PT PX REG RESP RF RG
RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA
XA XAPROTOCOL XC DS CD DD DF DM EC FA FS LP MA MS OPR ST VF
""".split())

BODY_PARTS = frozenset("""
ABDOMEN ABDOMENPELVIS ADRENAL ANKLE AORTA ARM AXILLA BACK BLADDER BRAIN BREAST BRONCHUS BUTTOCK CALCANEUS CALF
CAROTID CEREBELLUM CERVIX CHEEK CHEST CHESTABDOMEN CHESTABDPELVIS CIRCLEOFWILLIS CLAVICLE COCCYX COLON CORNEA
CORONARYARTERY CSPINE CTSPINE DUODENUM EAR ELBOW ESOPHAGUS EXTREMITY EYE EYELID FACE FEMUR FINGER FOOT FOREARM
GALLBLADDER HAND HEAD HEADNECK HEART HIP HUMERUS IAC ILEUM ILIUM JAW JEJUNUM KIDNEY KNEE LARYNX LEG LIVER LSPINE
LSSPINE LUNG MAXILLA MEDIASTINUM MOUTH NECK NECKCHEST NECKCHESTABDOMEN NECKCHESTABDPELV NOSE ORBIT OVARY PANCREAS
PAROTID PATELLA PELVIS PENIS PHARYNX PROSTATE RADIUS RECTUM RIB SACRUM SCAPULA SCROTUM SELLA SHOULDER SKULL SPINE
SPLEEN SSPINE STERNUM STOMACH SUBMANDIBULAR TESTIS THIGH THUMB THYMUS THYROID TIBIA TLSPINE TMJ TOE TONGUE TRACHEA
TSPINE ULNA URETER URETHRA UTERUS VAGINA VULVA WHOLEBODY WRIST ZYGOMA
""".split())

VIEWS = frozenset("""
AP PA LL RL RLD LLD RLO LLO LATERAL CC FB LM LMO ML MLO SIO XCC XCCL XCCM AT
""".split())

_NOISE = re.compile(r"[\s_\-]+")


def defined(value, terms: frozenset[str]) -> str | None:
    """``value`` normalised when it is one of ``terms``; ``"unknown"`` when it is something else; ``None`` if empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        try:  # a multi-valued element: its first value
            value = str(value[0]) if len(value) else ""
        except TypeError:
            value = str(value)
    text = _NOISE.sub("", value.strip().upper())
    if not text:
        return None
    return text if text in terms else UNKNOWN
