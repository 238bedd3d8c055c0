"""The grounding check on the contradictions a small LLM made on the default stack (issue 12)."""

from multimodal.evidence import classifier_evidence, dicom_evidence, note_evidence, transcript_evidence
from multimodal.grounding import check, sentences, without_unsupported
from multimodal.prompt import dicom_summary

HEADACHE = "I have had a terrible headache for three days."


def _transcript(t=HEADACHE):
    return [transcript_evidence("Audio 1", f'recording (3.1 s), transcript: "{t}"', t)]


def _photo(labels):
    return [classifier_evidence("Image 1", "", labels)]


def test_a_symptom_the_patient_never_named_is_flagged():
    g = check("The patient mentioned a throatache that started recently.", _transcript())
    assert [(i.kind, i.said, i.expected) for i in g.issues] == [("symptom", "throatache", ("headache",))]
    assert check("The patient reports a terrible headache for three days.", _transcript()).ok


def test_a_wrong_duration_is_flagged_but_advice_is_not():
    assert [i.said for i in check("You have had the headache for two days.", _transcript()).issues] == ["2 day"]
    assert check("If the headache lasts more than a week, see a doctor.", _transcript()).ok
    assert check("Ibuprofen may help; a CT scan is rarely needed for headaches.", _transcript()).ok


def test_the_classifier_runner_up_named_as_the_food_is_flagged():
    strawberry = _photo([("strawberry", 0.95), ("trifle", 0.02)])
    assert [i.said for i in check("The photo shows a trifle.", strawberry).issues] == ["trifle"]
    assert check("The photo shows strawberries, not a trifle.", strawberry).ok
    pepper = _photo([("bell pepper", 0.96), ("acorn squash", 0.02)])
    assert [i.said for i in check("This is an acorn squash.", pepper).issues] == ["acorn squash"]
    assert check("This is a bell pepper. Acorn squash would be a good side dish.", pepper).ok
    assert not check("The camera saw acorn squash.", pepper).ok


def test_a_misquoted_nutrient_number_is_flagged():
    meal = [note_evidence("Meal", "Meal: banana 120 g. Totals: energy 107 kcal, fat 0.4 g, sodium 1 mg, "
                                  "potassium 430 mg (9% of the 4,700 mg daily value).", source="nutrients")]
    g = check("Your meal has 107 kcal and 1 mg of sodium, with 430 mg potassium (9%). Sodium is 45 mg.", meal)
    assert [(i.kind, i.said) for i in g.issues] == [("number", "45 mg")] and g.checked == 5
    assert check("The 4,700 mg daily potassium target and about 0 g of fat.", meal).ok
    assert not check("It has 3 g of fibre.", meal).ok


def test_the_wrong_modality_or_body_part_in_a_claim_is_flagged():
    meta = {"modality": "CR", "body_part": "CHEST", "view": "PA"}
    ev = [dicom_evidence("Image 1", dicom_summary(meta), meta)]
    assert check("This chest X-ray (computed radiography) is a PA view.", ev).ok
    assert {i.said for i in check("The study is a CT of the abdomen.", ev).issues} == {"CT", "abdomen"}
    assert check("A CT scan may be needed if symptoms persist.", ev).ok  # advice, not a claim about the film


def test_a_structure_within_the_stated_region_is_not_a_contradiction():
    """The 1.5B's "a chest film, which shows the lungs and heart" was flagged for "heart" and replaced."""
    chest = {"modality": "CR", "body_part": "CHEST", "view": "PA"}
    ev = [dicom_evidence("Image 1", dicom_summary(chest), chest)]
    assert check("This is a chest film, which shows the lungs and heart.", ev).ok
    assert not check("This is a film of the knee.", ev).ok
    hand = {"modality": "CR", "body_part": "HAND"}
    assert check("This is a radiograph of the extremity.", [dicom_evidence("Image 1", dicom_summary(hand), hand)]).ok


def test_the_wrong_view_in_a_claim_is_flagged():
    """The 1.5B once called a PA hand film an "AP view": the header's view is a fact like its body part."""
    meta = {"modality": "CR", "body_part": "HAND", "view": "PA"}
    ev = [dicom_evidence("Image 1", dicom_summary(meta), meta)]
    assert [i.said for i in check("This is a CR image of the hand, AP view.", ev).issues] == ["AP"]
    assert check("This is a posteroanterior (PA) radiograph of the hand.", ev).ok
    assert check("A lateral view may help if pain persists.", ev).ok  # advice
    lateral = {"modality": "CR", "body_part": "CHEST", "view": "LL"}
    assert check("This is a lateral chest film.", [dicom_evidence("Image 1", dicom_summary(lateral), lateral)]).ok


def test_contradicting_sentences_can_be_dropped():
    answer = "The patient reports a headache. The patient also has a fever. Rest and drink water."
    g = check(answer, _transcript())
    assert [i.said for i in g.issues] == ["fever"]
    assert without_unsupported(answer, g) == "The patient reports a headache. Rest and drink water."
    assert sentences("One. Two!\n- three") == ["One.", "Two!", "- three"]
    assert sentences("It has 6.2 g of fibre. Fine...") == ["It has 6.2 g of fibre.", "Fine..."]
    assert check("It lasted several hours.", _transcript()).ok  # a vague amount states no duration


def test_a_finding_claimed_about_an_image_is_flagged_normal_or_not():
    meta = {"modality": "US"}
    ev = [dicom_evidence("Image 1", dicom_summary(meta), meta)]
    assert [i.said for i in check("The image shows a suspected mass in the left kidney.", ev).issues] == ["mass"]
    said = check("The findings indicate that there are no significant abnormalities.", ev).issues
    assert [(i.kind, i.said) for i in said] == [("finding", "abnormalities")]
    assert check("A radiologist would check for fractures and effusions.", ev).ok  # what to look for, not a claim
    assert check("On this image, look for signs of pneumonia.", ev).ok
    assert check("The patient reports pneumonia.", _transcript("I was told I had pneumonia.")).ok  # no image here


def _fruit_photo():
    from multimodal.evidence import not_a_scan
    from multimodal.image_domain import DomainVerdict
    from multimodal.prompt import domain_summary

    labels = [("lemon", 0.75), ("orange", 0.2)]
    return [not_a_scan(classifier_evidence("Image 1", "photo; sees: lemon 75%", labels),
                       domain_summary(DomainVerdict(False, "colour", 0.61)))]


def test_a_photo_that_is_no_scan_states_it_and_may_not_be_called_a_radiograph():
    photo = _fruit_photo()
    assert photo[0].text.startswith("not a radiograph or medical scan: a colour photograph (MedAny's image check: "
                                    "colour saturation 0.61); photo; sees: lemon 75%")
    assert photo[0].facts["modality"] == ("XC",) and photo[0].facts["domain"] == ("photo",)
    called = check("This chest film shows a lemon.", photo, "What does this chest film show?")
    assert [(i.kind, i.said, i.sentence) for i in called.issues] == [
        ("domain", "film", "This chest film shows a lemon.")]
    xray = check("The image is a chest X-ray of a lemon.", photo)
    assert sorted(i.kind for i in xray.issues) == ["domain", "modality"]  # "X-ray" names CR, the photo is XC
    assert "begin the answer by saying so" in xray.correction()


def test_a_scan_question_about_a_photo_needs_the_answer_to_say_it_is_none():
    photo = _fruit_photo()
    silent = check("It shows a lemon.", photo, "What does this chest film show?")
    assert [(i.kind, i.said, i.sentence) for i in silent.issues] == [("domain", "", "")]
    assert silent.issues[0].describe() == "did not say where the evidence says it is not a radiograph or medical scan"
    for said in ("This is not a radiograph: it is a photo of a lemon.", "This image isn't a medical scan.",
                 "It is a photograph rather than an X-ray."):
        assert check(said, photo, "What does this chest film show?").ok, said
    assert check("It shows a lemon.", photo, "What fruit is this?").ok  # no scan asked about, none claimed


def test_the_scan_rule_leaves_real_scans_alone():
    meta = {"modality": "CR", "body_part": "CHEST", "view": "PA"}
    film = [dicom_evidence("Image 1", dicom_summary(meta), meta)]
    assert check("This chest film is a PA radiograph.", film, "What does this chest film show?").ok
