"""The prompt layout shared by the pipeline and the assistant-format recipes."""

from multimodal.prompt import (
    NO_DESCRIPTION,
    SYSTEM_PROMPT,
    chat_messages,
    classifier_summary,
    dicom_summary,
    media_line,
    user_turn,
)


def test_dicom_summary_names_recorded_fields_in_order():
    meta = {"sex": "F", "modality": "CR", "view": "PA", "body_part": "CHEST", "patient_name": "never shown"}
    assert dicom_summary(meta) == "DICOM modality CR (computed radiography, an X-ray), body part CHEST, view PA, sex F"
    assert dicom_summary({"modality": "OT"}) == "DICOM modality OT"
    assert dicom_summary({}) == "DICOM"


def test_user_turn_puts_media_lines_before_the_question():
    lines = [media_line("image", 1, classifier_summary("pizza 80%")), "<image>"]
    assert user_turn(lines, "Calories?") == (
        "Image 1: photo; a general object classifier (not medical) sees: pizza 80%\n<image>\nQuestion: Calories?")
    assert user_turn([], "hello") == "hello"
    assert media_line("audio", 2, NO_DESCRIPTION) == "Audio 2: image attached"


def test_classifier_line_states_the_best_label_and_marks_weak_ones_less_likely():
    assert classifier_summary([("strawberry", 0.95), ("trifle", 0.02)]) == (
        "photo; a general object classifier (not medical) sees: strawberry 95%; less likely: trifle 2%")
    assert classifier_summary([("banana", 0.55), ("corn on the cob", 0.40)]).endswith(
        "sees: banana 55%, corn on the cob 40%")  # a close runner-up is not "less likely"


def test_chat_messages_start_with_the_system_prompt():
    system, user = chat_messages([media_line("image", 1, "DICOM modality CT")], "What is it?")
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert user["role"] == "user" and user["content"].endswith("Question: What is it?")


def test_transcript_in_reads_back_the_transcript_line():
    from multimodal.prompt import transcript_in, transcript_summary

    line = transcript_summary("recording (3.1 s)", 'I said "ouch", twice.')
    assert line == 'recording (3.1 s), transcript: "I said "ouch", twice."'
    assert transcript_in(line) == 'I said "ouch", twice.'
    assert transcript_in("recording (2.0 s), silent: no speech was heard") == ""


def test_speech_in_another_language_gives_its_language_and_translation():
    from multimodal.prompt import transcript_in, transcript_summary

    line = transcript_summary("recording (2.4 s)", "Me duele la cabeza.", "Spanish", "My head hurts.")
    assert line == 'recording (2.4 s), spoken in Spanish, transcript: "Me duele la cabeza.", English translation: ' \
                   '"My head hurts."'
    assert transcript_in(line) == "Me duele la cabeza."
    assert transcript_summary("recording", "Hello.", "English") == 'recording, transcript: "Hello."'


def test_the_answer_language_follows_the_question():
    from types import SimpleNamespace

    from multimodal.prompt import render_plan

    plan = SimpleNamespace(media=[], context=[], question="What should I do?", correction=None, json_schema=None,
                           tools=(), answer_language="German")
    assert render_plan(plan)[-1]["content"].endswith("What should I do?\nAnswer in German.")
    assert render_plan(SimpleNamespace(**{**vars(plan), "answer_language": None}))[-1]["content"].endswith("do?")


def test_placeholders_typed_in_a_question_are_text_not_media():
    """Issue 13: a question containing `<image>` was refused (422 / exit 2) as a placeholder mismatch."""
    from multimodal.prompt import literal
    from multimodal.template import count_placeholders

    messages = chat_messages(["Image 1: photo"], literal("What does <image> or <audio> mean in a report?"))
    assert count_placeholders(messages) == {"image": 0, "audio": 0}
    assert "image>" in messages[-1]["content"] and "audio>" in messages[-1]["content"]
