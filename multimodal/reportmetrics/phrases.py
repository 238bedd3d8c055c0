"""What the report labeler looks for: the 14 CheXpert labels' mention phrases, and the ConText triggers of reports.

Written for MedAny after the public CheXpert labeler's phrase lists (Irvin et al.,
2019; NegBio's negation and uncertainty patterns), as regular expressions on word
boundaries. A mention is one of three kinds:

- ``finding``: the words name the finding ("cardiomegaly", "pleural effusion");
  the ConText triggers around it decide 1, 0 or -1.
- ``neutral``: the words name a structure whose size is the finding ("heart size",
  "cardiac silhouette", "mediastinum"): 0 when negated or called normal, -1 when
  hedged, called stable/unchanged/borderline, 1 only with a word of enlargement
  near it ("enlarged", "widened"); with none of those it is not a mention.
- ``hedged``: the words themselves are uncertain evidence ("vascular congestion"
  for Edema, as in CheXpert): -1 unless negated.

``UNMENTIONS`` are words that contain a mention but are not one ("pericardial
effusion" is no pleural effusion; "over the heart" is a position). ``OTHER_FINDINGS``
are abnormalities outside the 14 labels: asserted, they keep No Finding blank.
"""

from __future__ import annotations

from ..context import Rules, Trigger, words

LABELS = ("No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
          "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
          "Fracture", "Support Devices")
"""The 14 labels in the CheXpert data set's column order."""

FIVE = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
"""The five labels of the CheXpert competition, the "F1-5" subset papers report beside all 14."""

_HEART = r"(?:heart|cardiac)(?: and mediastinal| and mediastinum)?"

MENTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "Enlarged Cardiomediastinum": (
        ("finding", r"widen\w* (?:of the )?(?:superior )?mediastin\w*|mediastinal (?:widening|enlargement)"),
        ("neutral", r"cardiomediastin\w*(?: (?:silhouette|contours?|size|structures))?"),
        ("neutral", r"(?:superior )?mediastinum|mediastinal (?:and hilar )?(?:contours?|silhouettes?|configuration|"
                    r"width|structures)|(?:hilar and |heart and |cardiac and )mediastinal (?:contours?|silhouettes?)"),
        ("neutral", r"pericardial silhouette"),
    ),
    "Cardiomegaly": (
        ("finding", r"cardiomegaly|cardiac enlargement|enlarged (?:heart|cardiac silhouette)|"
                    r"enlargement of the (?:heart|cardiac silhouette)"),
        ("neutral", rf"{_HEART} (?:silhouettes?|size|contours?|shadow)|heart|cardiac size"),
    ),
    "Lung Opacity": (
        ("finding", r"opaci\w*|infiltrat\w*|air[- ]?space (?:disease|process|opacit\w*)|ground[- ]glass|"
                    r"(?:increased |ill-defined |patchy |hazy )?densit(?:y|ies)|hazy|haziness|"
                    r"interstitial (?:markings?|pattern|prominence|thickening|abnormalit\w*)|reticula\w*|"
                    r"parenchymal scar\w*|peribronchial (?:thickening|cuffing)"),
    ),
    "Lung Lesion": (
        ("finding", r"mass(?:es)?|nodul\w*|nodular (?:densit\w*|opacit\w*)|lung lesions?|pulmonary lesions?|"
                    r"cavitary lesions?|tumou?rs?|neoplasm\w*|carcinoma|malignan\w*"),
    ),
    "Edema": (
        ("finding", r"edema|oedema|(?:congestive )?heart failure|chf|fluid overload|volume overload"),
        ("hedged", r"(?:pulmonary )?vascular (?:congestion|engorgement|prominence|indistinctness)|"
                   r"pulmonary (?:venous )?congestion|indistinct (?:pulmonary )?vasculature|cephalization"),
    ),
    "Consolidation": (("finding", r"consolidat\w*"),),
    "Pneumonia": (("finding", r"\w*pneumonias?|infections?|infectious(?: process)?"),),
    "Atelectasis": (("finding", r"atelecta\w*|collapsed?"),),
    "Pneumothorax": (("finding", r"\w*pneumothora(?:x|ces)|ptx"),),
    "Pleural Effusion": (("finding", r"effusions?|pleural fluid|hydrothorax|\w*pneumothora(?:x|ces) with fluid"),),
    "Pleural Other": (
        ("finding", r"pleural (?:thickening|plaques?|scar\w*|calcification\w*|fibrosis)|fibrothorax|"
                    r"pleuro-?parenchymal (?:scar\w*|thickening)|apical (?:pleural )?cap"),
    ),
    "Fracture": (("finding", r"fractur\w*|fx"),),
    "Support Devices": (
        ("finding", r"tubes?|catheters?|picc(?: line)?|"
                    r"(?:central|venous|arterial|midline|subclavian|jugular|ij|swan[- ]ganz|pa|dialysis|"
                    r"central venous) (?:lines?|catheters?)|lines? tips?|lines and tubes|"
                    r"pacemakers?|pacers?|pacing (?:leads?|wires?|device)|(?:pacemaker|defibrillator|icd|aicd) "
                    r"(?:leads?|generator|wires?)|defibrillators?|a?icd|"
                    r"port-?a-?cath|portacath|mediport|(?:chest |infusion )?port|"
                    r"(?:prosthetic|mechanical|bioprosthetic) (?:\w+ )?valves?|valve (?:replacement|prosthesis)|"
                    r"stents?|drains?|hardware|cannula|ecmo|intra-?aortic balloon pump|iabp|"
                    r"(?:monitoring|support(?:ing)?) (?:devices?|leads?)|devices?"),
    ),
}

UNMENTIONS: dict[str, str] = {
    "Enlarged Cardiomediastinum": r"(?:over(?:lying)?|in|within|projects? over|projecting over) the (?:\w+ )?"
                                  r"mediastinum",
    "Cardiomegaly": r"(?:congestive )?heart failure|(?:over(?:lying)?|in|within|projects? over|projecting over|near)"
                    r" the (?:\w+ )?(?:heart|cardiac silhouette)",
    "Lung Opacity": r"pleural scar\w*|nodular (?:densit\w*|opacit\w*)|(?:bone|soft tissue|calcific) densit\w*",
    "Lung Lesion": r"calcified (?:nodul\w*|granulom\w*)|massive|(?:soft tissue|breast) mass",
    "Edema": r"(?:soft tissue|subcutaneous|peripheral|pedal|extremity|chest wall) edema",
    "Pleural Effusion": r"(?:pericardial|joint) effusions?",
    "Atelectasis": r"(?:vertebral(?: body)?|compression) collapse|collapse of (?:a |the )?(?:\w+ )?vertebra\w*",
    "Fracture": r"(?:fractured|fracture of (?:the |a )?)(?:\w+ )?(?:sternal|sternotomy|pacing|pacer) wires?|"
                r"(?:wire|lead) fractur\w*",
    "Pneumonia": r"pneumonia protocol",
    "Support Devices": r"(?:bronchial|eustachian|fallopian) tubes?|tube(?:s)? (?:feeding )?removal? recommended",
}

OTHER_FINDINGS = (r"emphysema\w*|hyperinflat\w*|hyperexpan\w*|granulom\w*|scoliosis|kyphosis|kyphotic|\w*hernia|"
                  r"degenerat\w*|spondylo\w*|osteophyt\w*|calcifi\w*|atherosclero\w*|osteopenia|"
                  r"pericardial effusions?|pneumomediastinum|pneumoperitoneum|free air|bronchiectasis|fibrosis|"
                  r"fibrotic|bullae|bulla|bullous|cavitation|cavitary|eventration|elevat\w* (?:of the )?(?:\w+ )?"
                  r"hemidiaphragm|hemidiaphragm (?:is )?elevat\w*|hematoma|deformit\w*|copd|aspiration|metasta\w*|"
                  r"volume loss|bronchitis|airways? disease|tortuous\w*|tortuosity|lymphadenopathy|"
                  r"subcutaneous emphysema|scarring")
"""Abnormalities outside the 14 labels (after CheXpert's "No Finding" list): asserted, No Finding stays blank."""

ENLARGED = r"enlarg\w*|widen\w*|large|increased in size|cardiomegaly"
"""Words that make a neutral mention ("heart size", "mediastinum") a finding."""

STABLE = r"stable|stably|unchanged|similar|borderline|top[- ]normal|no (?:significant )?change in"
"""Words that make a neutral mention uncertain without a size word (CheXpert: "stable cardiac silhouette" is -1)."""

RADIOLOGY = Rules(
    triggers=(
        # Negation before the mention: "no effusion", "without consolidation", "free of ...".
        Trigger(words(r"no", r"not", r"without", r"negative for", r"free of", r"clear of", r"no evidence of",
                      r"no (?:radiographic |definite |convincing |visible |focal |acute )?(?:signs?|evidence) of",
                      r"absence of", r"resolution of", r"resolved", r"removal of", r"rule out", r"ruled out",
                      r"neither", r"nor", r"no longer", r"there is no", r"there are no", r"no definite",
                      r"no definitive", r"interval removal of", r"negative"), "negated"),
        Trigger(words(r"normal", r"unremarkable", r"within normal limits"), "negated", window=2, stops=","),
        # Negation after the mention: "pneumothorax is not seen", "the heart is normal in size".
        Trigger(words(r"(?:is|are|was|were|has been|have been)? ?not (?:\w+ly )?(?:seen|identified|present|"
                      r"visuali[sz]ed|demonstrated|appreciated|evident|noted|detected|enlarged|widened|"
                      r"increased|appreciable)",
                      r"(?:is|are|has|have)? ?(?:resolved|cleared|absent|removed|been removed|been withdrawn)",
                      r"no longer (?:seen|present|visuali[sz]ed|evident)", r"(?:is|are) negative",
                      r"(?:is|are|appears?|remains?) (?:normal|unremarkable)", r"normal in (?:size|caliber|contour)",
                      r"(?:at the )?upper limits? of normal", r"within normal limits", r"normal", r"unremarkable",
                      r"free"), "negated", "backward", window=6),
        Trigger(r"(?:is|are) clear", "negated", "backward", window=2, stops=","),
        # Uncertainty stronger than negation: "cannot exclude", "no new consolidation" (CheXpert's pre-negation
        # uncertainty).
        Trigger(words(r"cannot (?:be )?(?:excluded?|ruled? out)", r"can't (?:be )?(?:excluded?|ruled? out)",
                      r"can not (?:be )?(?:excluded?|ruled? out)", r"not (?:be )?(?:excluded|ruled out)",
                      r"difficult to (?:exclude|rule out)", r"no new", r"not entirely excluded",
                      r"could not be excluded"), "uncertain", "both", window=8, strong=True),
        # Uncertainty: "possible pneumonia", "may represent atelectasis", "atelectasis versus consolidation".
        Trigger(words(r"possible", r"possibly", r"probable", r"probably", r"likely", r"questionable",
                      r"question of", r"suspect\w*", r"suspicious(?: for)?", r"suspicion (?:of|for)",
                      r"concerning for", r"worrisome for", r"suggestive of", r"suggest\w*", r"may", r"might",
                      r"could", r"can", r"would", r"presum\w*", r"equivocal", r"indeterminate", r"uncertain",
                      r"differential (?:diagnosis )?(?:includes?|considerations?)", r"consider\w*",
                      r"cannot be (?:assessed|evaluated)", r"not (?:well |clearly )?(?:assessed|evaluated)",
                      r"obscur\w*", r"and/or"), "uncertain"),
        Trigger(words(r"(?:is|are) (?:suspected|likely|possible|probable|questionable)", r"suspected",
                      r"not (?:well |clearly )?(?:assessed|evaluated|seen)", r"(?:is|are) obscured",
                      r"and/or"), "uncertain", "backward", window=6),
        Trigger(words(r"versus", r"vs\.?"), "uncertain", "both", window=6),
        Trigger(r"or", "uncertain", "both", window=2, stops=","),
        # Pseudo-triggers: they read like a negation and are none.
        Trigger(words(r"no (?:significant |substantial |appreciable )?(?:interval )?change", r"not only",
                      r"no (?:significant )?increase", r"without (?:significant |substantial )?(?:interval )?change",
                      r"not (?:significantly )?changed", r"gram[- ]negative",
                      r"not (?:significantly )?enlarged compared", r"if not"), "pseudo", "both"),
    ),
    terminations=r"\b(?:but|however|although|though|whereas|while|except|aside from|apart from|other than|"
                 r"which|with the exception of|otherwise)\b|,\s*(?:and|with) (?:there|the|a|an|small|mild|"
                 r"moderate|large)\b|\b(?:there is|there are)\b(?! no)",
    boundaries=r"(?<!\d)\.(?!\d)|[;:!?\n]+")
"""The ConText rules of radiology reports."""
