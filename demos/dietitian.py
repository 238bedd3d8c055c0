"""Dietitian workspace: meal photo -> recognised foods -> editable portions -> nutrients -> advice.

Recognition uses the vision encoder's own ImageNet head (about forty food
classes) today; the dietitian corrects the foods and grams in the table, the
totals come from the bundled USDA FoodData Central table (:mod:`demos.nutrition`),
and the LLM's advice is given those numbers. With an image projector installed
the photo is attached to the advice request as well: its classifier line always,
its projected tokens only when the projector covers photos (the shipped one is
for scans and leaves colour photos alone).
"""

from __future__ import annotations

from encoders.base import Classifier

from .common import (
    LLM_SLOT,
    adopt_upload,
    evidence_markdown,
    gr,
    grounded_answer,
    log_event,
    model_names,
    raise_ui_error,
    status_error,
    status_ok,
    timed,
    user_error,
)
from .nutrition import food_names, lookup, meal_evidence, meal_totals, summary_headers, summary_table
from .private import PrivateFiles, new_session
from .report import Report
from .settings import DemoSettings

SAMPLE_MEAL = "sample:fruits.jpg"
MIN_CONFIDENCE = 0.02  # below this an ImageNet food guess is noise
PORTION_HEADERS = ["Food", "Grams"]
DEFAULT_GOAL = "Adult with type 2 diabetes and high blood pressure; aims for a low-sodium diet."
ADVICE_QUESTION = ("As a dietitian, give three short, practical suggestions for this meal, quoting the meal's "
                   "numbers exactly as given.")


def advice_context(summary, goal: str | None) -> list:
    """The evidence an advice request carries: the meal's nutrient table and the patient's context."""
    from multimodal.evidence import note_evidence

    return [meal_evidence(summary), note_evidence("Patient", (goal or "").strip() or "adult, no details given")]


def _pairs(result) -> list[tuple[str, float]]:
    """Normalise a classifier's output to ``[(label, probability)]``."""
    if isinstance(result, dict):
        return [(str(k), float(v)) for k, v in result.items()]
    pairs = []
    for item in result or []:
        if isinstance(item, dict):
            label = item.get("label") or item.get("name") or item.get("food")
            prob = item.get("prob", item.get("probability", item.get("score", item.get("confidence", 0.0))))
            pairs.append((str(label), float(prob)))
        else:
            label, prob = item[0], item[1]
            pairs.append((str(label), float(prob)))
    return pairs


def _food_name(label: str) -> str | None:
    """A classifier label or food name -> the matching food of the nutrient table, if any."""
    food = lookup(label) or lookup(label.split(",")[0])
    return food.name if food else None


def recognize_foods(vision, image, top_k: int = 5) -> list[tuple[str, float]]:
    """Foods the classifier sees in ``image`` as ``[(food, confidence)]``, best first.

    Uses ``encoders.imagenet_foods.food_predictions`` on the full ImageNet-1k
    probabilities of a :class:`~encoders.base.Classifier` with that head, else its
    ``classify(image, top_k)`` labels. Probabilities of classes naming the same
    food are summed; foods outside the nutrient table are dropped (the
    dietitian can still add them by hand).
    """
    if not isinstance(vision, Classifier) or not vision.trained_head:
        return []
    if vision.label_subset == "imagenet-1k":  # sum the probabilities of every class naming one food
        from encoders.imagenet_foods import food_predictions

        pairs = food_predictions(vision.class_probs(image), top_k=20)
    else:
        pairs = _pairs(vision.classify(image, top_k=50))
    scores: dict[str, float] = {}
    for label, prob in pairs:
        food = _food_name(label)
        if food is not None:
            scores[food] = scores.get(food, 0.0) + prob
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    return [(food, round(p, 4)) for food, p in ranked if p >= MIN_CONFIDENCE][:top_k]


def _portions(table) -> list[tuple[str, float]]:
    """Rows of the editable portion table -> ``[(food, grams)]`` (blank grams count as 0)."""
    rows = table.values.tolist() if hasattr(table, "values") else (table or [])
    out = []
    for row in rows:
        if not row or row[0] is None or not str(row[0]).strip():
            continue
        grams = row[1] if len(row) > 1 and row[1] not in (None, "") else 0
        out.append((str(row[0]).strip(), grams))
    return out


class DietitianWorkspace:
    """Handlers and UI of the dietitian tab."""

    def __init__(self, assistant, settings: DemoSettings, private: PrivateFiles | None = None):
        self.assistant = assistant
        self.settings = settings
        self.limits = settings.input_limits()
        self.private = private or PrivateFiles()

    def sample(self):
        """The bundled fruit photo (path for the image component)."""
        return self.private.sample(SAMPLE_MEAL)

    def adopt(self, photo, session: str | None = None):
        """An uploaded photo moved to the session's private folder under a neutral name (its new path)."""
        return adopt_upload(self.private, photo, session, "dietitian.adopt")

    def recognize(self, photo):
        """Photo path -> (label dict, portion rows, status)."""
        if not photo:
            raise user_error("Upload or take a photo of the meal first.", "No photo")
        from multimodal.io import load_image

        try:
            with timed("dietitian.recognize"):
                image = load_image(photo, limits=self.limits)
                foods = recognize_foods(self.assistant.vision, image)
        except Exception as exc:
            raise_ui_error("dietitian.recognize", exc)
        log_event("dietitian.foods", found=len(foods))
        rows = [[name, lookup(name).portion_g] for name, _ in foods]
        if not foods:
            status = status_error("No food from the nutrient table was recognised. Add the foods by hand below.")
        else:
            status = status_ok("Check the foods and portions below; edit grams to match the plate.")
        return {name: p for name, p in foods}, rows or [["", 0]], status

    def add_food(self, food, grams, table):
        """Append one row to the portion table."""
        if not food:
            raise user_error("Pick a food to add.", "No food")
        rows = [list(r) for r in _portions(table)]
        rows.append([food, grams if grams not in (None, "") else lookup(food).portion_g])
        return rows

    def totals(self, table):
        """Portion table -> (nutrient table rows, status)."""
        try:
            summary = meal_totals(_portions(table))
        except Exception as exc:
            raise_ui_error("dietitian.totals", exc)
        note = status_error("Not in the nutrient table (not counted): " + ", ".join(summary.unknown)) \
            if summary.unknown else ""
        return summary_table(summary), note

    def advise(self, table, goal, photo):
        """Stream advice that quotes the computed numbers: yields (advice, evidence)."""
        try:
            summary = meal_totals(_portions(table))
        except Exception as exc:
            raise_ui_error("dietitian.advise", exc)
        if not summary.rows:
            raise user_error("Add at least one food with its grams first.", "Empty meal")
        attach = photo and self.assistant.projects("image")
        answer = ""
        yield "Thinking…", ""
        try:
            with timed("dietitian.advise", foods=len(summary.rows)):
                from multimodal.io import load_image

                images = [load_image(photo, limits=self.limits)] if attach else []
                for answer in grounded_answer(self.assistant, ADVICE_QUESTION, images=images,
                                              context=advice_context(summary, goal)):
                    yield answer, ""
        except Exception as exc:
            raise_ui_error("dietitian.advise", exc)
        yield answer.strip() or "(no advice was generated)", evidence_markdown(self.assistant.last_answer)

    def export(self, table, goal, advice, session: str | None = None):
        summary = meal_totals(_portions(table))
        report = Report(workspace="dietitian", models=model_names(self.assistant),
                        tables={"Meal nutrients (USDA FoodData Central)": {"headers": summary_headers(),
                                                                             "rows": summary_table(summary)}},
                        turns=[{"role": "user", "content": f"Patient: {goal or ''}"},
                               {"role": "assistant", "content": advice or ""}]).cite(self.assistant.knowledge)
        try:
            return report.export(self.private, session)
        except Exception as exc:  # never a traceback that could quote the conversation
            raise_ui_error("dietitian.export", exc)

    def render(self) -> None:
        g = gr()
        session = g.State(new_session, delete_callback=self.private.end_session)
        with g.Row(equal_height=False):
            with g.Column(scale=4, min_width=340):
                photo = g.Image(label="Meal photo (upload or webcam)", sources=["upload", "webcam", "clipboard"],
                                type="filepath", height=320, elem_id="dietitian-photo")
                with g.Row():
                    recognize = g.Button("Recognise foods", variant="primary", elem_id="dietitian-recognize")
                    sample = g.Button("Use sample photo", size="sm", elem_id="dietitian-sample")
                status = g.HTML(elem_id="dietitian-status")
                labels = g.Label(label="Recognised foods (ImageNet classifier, not medical)", num_top_classes=5,
                                 elem_id="dietitian-labels")
            with g.Column(scale=6, min_width=420):
                portions = g.Dataframe(headers=PORTION_HEADERS, datatype=["str", "number"], value=[["", 0]],
                                       type="array", interactive=True, label="Portions (edit foods and grams)",
                                       column_count=2, elem_id="dietitian-portions")
                with g.Row():
                    pick = g.Dropdown(food_names(), label="Add a food", scale=3, elem_id="dietitian-pick")
                    grams = g.Number(label="Grams", value=100, minimum=0, scale=1)
                    add = g.Button("Add", scale=1, size="sm", elem_id="dietitian-add")
                nutrients = g.Dataframe(headers=summary_headers(), type="array", interactive=False,
                                        label="Nutrients per portion and total", elem_id="dietitian-nutrients")
                unknown = g.HTML(elem_id="dietitian-unknown")
                goal = g.Textbox(label="Patient context", value=DEFAULT_GOAL, lines=2)
                with g.Row():
                    advise = g.Button("Get advice", variant="primary", elem_id="dietitian-advise")
                    export = g.Button("Export report", variant="secondary")
                advice = g.Markdown(label="Advice", elem_id="dietitian-advice", elem_classes=["medany-answer"])
                evidence = g.Markdown(elem_id="dietitian-evidence", elem_classes=["medany-evidence"])
                files = g.File(label="Report (Markdown and JSON)", file_count="multiple", interactive=False)
                g.Markdown("Figures per 100 g from USDA FoodData Central (public domain); each row's FDC id is in "
                           "the exported report. Recognition uses a general ImageNet model: always check the foods.",
                           elem_classes=["medany-note"])

        sample.click(self.sample, None, [photo], api_name="dietitian_sample") \
            .then(self.recognize, [photo], [labels, portions, status])
        recognize.click(self.recognize, [photo], [labels, portions, status], api_name="dietitian_recognize")
        add.click(self.add_food, [pick, grams, portions], [portions], api_name="dietitian_add")
        portions.change(self.totals, [portions], [nutrients, unknown], api_name="dietitian_totals")
        advise.click(self.advise, [portions, goal, photo], [advice, evidence], api_name="dietitian_advise",
                     concurrency_id=LLM_SLOT)
        export.click(self.export, [portions, goal, advice, session], [files], api_name="dietitian_export")
        photo.upload(self.adopt, [photo, session], [photo], api_visibility="undocumented")
