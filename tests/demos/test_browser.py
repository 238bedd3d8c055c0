"""A real headless Chromium drives the page: upload the chest film, ask, watch the answer stream.

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and the
``playwright`` Python package; Playwright drives the system browser through
``executable_path``, so no browser download is needed. Skips only when the
browser itself is absent. Saves a screenshot (``MEDANY_SCREENSHOTS`` names the folder).

The tiny random LLM only emits whitespace, so the model's token stream is
replaced by a scripted one (everything else in the request is real). Set
``MEDANY_SCREENSHOT_STACK=embedded`` to run on the embedded real models instead
(slower; used to refresh the README screenshots).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("MEDANY_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Set MEDANY_SCREENSHOTS=docs/screenshots to refresh the README images; else a temp folder.
SCREENSHOTS = os.environ.get("MEDANY_SCREENSHOTS")
QUESTION = "Describe this chest film and list what a radiologist would check."

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)),
    reason=f"Chromium not found at {CHROMIUM} (CI installs it with: apt-get install -y chromium)",
)

# Records every text length the answer bubble passes through, from inside the page.
WATCH_JS = """
() => {
  window.__lengths = [];
  const chat = document.querySelector('#clinician-chat');
  new MutationObserver(() => {
    const bots = chat.querySelectorAll('.message.bot, [data-testid="bot"]');
    const last = bots[bots.length - 1];
    if (last) window.__lengths.push(last.innerText.trim().length);
  }).observe(chat, {subtree: true, childList: true, characterData: true});
}
"""


@pytest.fixture(scope="module")
def browser_server(demo_helpers):
    pytest.importorskip("playwright.sync_api")
    from demos.app import build_demo, launch
    from demos.settings import DemoSettings
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    h = demo_helpers
    if os.environ.get("MEDANY_SCREENSHOT_STACK") == "embedded":
        assistant = Assistant.load(StackConfig(max_new_tokens=160))
    else:
        assistant = h.scripted_answer(Assistant.load(StackConfig(**h.TINY)))
    settings = DemoSettings(port=h.free_port(), max_file_size=2 * 1024 * 1024)
    demo = build_demo(assistant, settings=settings)
    _, url = launch(demo, settings, block=False)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def page(browser_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 1100}, device_scale_factor=1)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(browser_server)
        page.wait_for_selector("#clinician-files")
        yield page
        browser.close()


def test_upload_ask_stream_screenshot(page, tmp_path):
    from multimodal.samples import resolve_sample

    assert page.locator("#medany-disclaimer").is_visible()
    assert "Research use only" in page.locator("#medany-disclaimer").inner_text()

    film = str(resolve_sample("sample:RG1_UNCR.dcm"))  # 7 MB: above the 2 MiB upload limit of this server
    page.locator("#clinician-sample").click()  # the bundled film, server side
    page.wait_for_selector("#clinician-viewer img")
    page.wait_for_function("document.querySelector('#clinician-status').innerText.includes('1 image')")

    page.evaluate(WATCH_JS)
    page.locator("#clinician-question textarea").fill(QUESTION)
    page.locator("#clinician-ask").click()
    page.wait_for_function("document.querySelector('#clinician-note').innerText.includes('Answered')",
                           timeout=120_000)
    lengths = page.evaluate("window.__lengths")
    answer = page.locator("#clinician-chat .message.bot, #clinician-chat [data-testid='bot']").last.inner_text()
    assert len(answer.strip()) > 20
    growing = sorted({n for n in lengths if n > 0})
    assert len(growing) >= 3, f"expected the answer to arrive in pieces, saw lengths {growing}"
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "clinician.png"), full_page=True)
    assert (folder / "clinician.png").stat().st_size > 10_000
    assert film  # the uploaded-film path is exercised in test_upload_errors_show_in_page

    page.locator("#clinician-why input").check()  # "Why?": the facts the answer rests on, and the map
    page.wait_for_function("(() => { const n = document.querySelector('#clinician-why-facts');"
                           " return n !== null && n.innerText.includes('Question'); })()", timeout=600_000)
    facts = page.locator("#clinician-why-facts").inner_text()
    assert "DICOM body part" in facts and "Question" in facts
    assert "not the disease" in page.locator("#clinician-why-note").inner_text()
    if os.environ.get("MEDANY_SCREENSHOT_STACK") == "embedded":  # the shipped projector splices the film
        page.wait_for_selector("#clinician-why-map img")
    page.locator("#clinician-why-panel").scroll_into_view_if_needed()
    page.screenshot(path=str(folder / "clinician-why.png"), full_page=True)


def test_upload_errors_show_in_page(page, tmp_path):
    from multimodal.samples import resolve_sample

    broken = tmp_path / "broken.dcm"
    broken.write_bytes(Path(resolve_sample("sample:RG1_UNCR.dcm")).read_bytes()[:4000])
    page.locator("#clinician-files input[type=file]").set_input_files(str(broken))
    status = page.locator("#clinician-status .medany-error")
    status.wait_for()
    assert "damaged" in status.inner_text()

    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(3 * 1024 * 1024))
    page.locator("#clinician-files input[type=file]").set_input_files(str(big))
    toast = page.locator("[data-testid='toast-body']", has_text="exceed").first  # Gradio's toast, nothing else
    toast.wait_for(timeout=60_000)  # the server answers the upload: slower on a busy machine
    assert toast.is_visible()


def test_consult_sample_clip_is_transcribed_in_page(page, tmp_path):
    page.reload()  # a clean page: no toasts left by the upload-error test
    page.wait_for_selector("#clinician-files")
    page.get_by_role("tab", name="Consult").click()
    page.locator("#consult-sample").click()  # the synthesized consult clip, served back to the page
    page.wait_for_selector("#consult-audio audio", state="attached")
    page.locator("#consult-transcribe").click()
    page.wait_for_function("document.querySelector('#consult-status').innerText.includes('transcribed into')",
                           timeout=120_000)
    assert "9." in page.locator("#consult-status").inner_text()  # the clip lasts 9.4 s
    page.wait_for_function("document.querySelector('#consult-transcript').innerText.includes('0:0') && "
                           "!document.querySelector('#consult-transcript').innerText.includes('processing')")
    page.wait_for_timeout(800)  # let the table's fade-in finish before the screenshot
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    page.screenshot(path=str(folder / "consult.png"), full_page=True)
    assert (folder / "consult.png").stat().st_size > 10_000
    page.get_by_role("tab", name="Clinician").click()  # leave the page as the other tests expect it


def add_food_by_hand(page, food: str) -> None:
    """Pick ``food`` in the dropdown and press Add once the page holds it as the value.

    Clicking Add before the dropdown has committed the option sends an empty
    pick (the app then says "Pick a food to add"): wait for the committed value.
    """
    dropdown = page.locator("#dietitian-pick input")
    dropdown.click()
    dropdown.fill(food)
    page.get_by_role("option", name=food, exact=True).click()
    page.wait_for_function(f"document.querySelector('#dietitian-pick input').value === {food!r}")
    page.locator("#dietitian-pick input").blur()
    page.wait_for_timeout(300)  # let the dropdown's change event reach the server state
    page.locator("#dietitian-add").click()
    page.wait_for_function(f"document.querySelector('#dietitian-portions').innerText.includes({food!r})",
                           timeout=30_000)


def test_dietitian_sample_photo_to_nutrients_and_advice(page, tmp_path):
    page.reload()
    page.wait_for_selector("#clinician-files")
    page.get_by_role("tab", name="Dietitian").click()
    page.locator("#dietitian-sample").click()  # the bundled fruit photo, then recognition
    page.wait_for_selector("#dietitian-photo img")
    # wait for recognition's own verdict: while it runs, the status box holds Gradio's progress text
    page.wait_for_function("(() => { const t = document.querySelector('#dietitian-status').innerText;"
                           " return t.includes('Add the foods by hand') || t.includes('Check the foods'); })()",
                           timeout=120_000)
    if "Add the foods by hand" in page.locator("#dietitian-status").inner_text():  # tiny stack: no ImageNet head
        add_food_by_hand(page, "lemon")
    try:
        page.wait_for_function("document.querySelector('#dietitian-nutrients').innerText.includes('Total')",
                               timeout=60_000)
    except Exception as exc:  # say what the page showed instead
        raise AssertionError(f"no totals; status {page.locator('#dietitian-status').inner_text()!r}, "
                             f"portions {page.locator('#dietitian-portions').inner_text()[:200]!r}") from exc
    assert "lemon" in page.locator("#dietitian-nutrients").inner_text()
    page.locator("#dietitian-advise").click()
    page.wait_for_function("(() => { const t = document.querySelector('#dietitian-advice').innerText.trim();"
                           " return t.length > 20 && !t.startsWith('Thinking'); })()", timeout=180_000)
    advice, seen = "", []
    for _ in range(240):  # the stream has ended once the text holds still for two seconds
        page.wait_for_timeout(1000)
        seen.append(page.locator("#dietitian-advice").inner_text())
        if len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]:
            advice = seen[-1]
            break
    assert len(advice.strip()) > 20
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    page.screenshot(path=str(folder / "dietitian.png"), full_page=True)
    assert (folder / "dietitian.png").stat().st_size > 10_000
    page.get_by_role("tab", name="Clinician").click()
