"""The demo in a real browser (issue 12, item 7): Debian's chromium driven by Playwright.

Enter a prompt, run best-of-2 with the embedded preset, and find on the page the best picture
displayed at least 256 px wide and high, the scores and a rationale. Skipped, with the reason printed,
where Playwright or a chromium cannot be found or cannot start (`bash dev.sh test` installs both).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys

import pytest

pytest.importorskip("gradio")


def skip(reason: str):
    print(f"browser test skipped: {reason}", file=sys.stderr)
    pytest.skip(reason)


def chromium_path() -> str | None:
    for name in (os.environ.get("CHROMIUM_PATH"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        skip("playwright is not installed (pip install playwright)")
    executable = chromium_path()
    if executable is None:
        skip("no chromium on PATH (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            # Debian's browser, never Playwright's own download (not reachable here).
            instance = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        except Error as error:
            skip(f"chromium at {executable} did not start: {str(error).splitlines()[0]}")
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def demo_url():
    from apps import demo

    app = demo.build_demo("embedded")
    _, url, _ = demo.launch(app, "127.0.0.1", free_port(), prevent_thread_lock=True, quiet=True)
    yield url
    app.close()


def test_best_of_n_in_a_real_browser(browser, demo_url):
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.goto(demo_url)
    prompt = page.locator("#prompt textarea")
    prompt.fill("a cat on a sofa")
    page.wait_for_function("document.querySelector('#prompt-warning').innerText.includes('cannot draw')",
                           timeout=120_000)
    example = "a large yellow triangle on the left on a black background"
    page.get_by_text(example).first.click()  # an example; the page fills the prompt after a server round trip
    page.wait_for_function(f"document.querySelector('#prompt textarea').value === {example!r}", timeout=60_000)
    assert prompt.input_value() == example
    page.locator("#n input[type=number]").fill("2")
    page.locator("#n input[type=number]").press("Enter")
    page.click("#generate")
    page.wait_for_selector("#scores table", timeout=900_000)  # minutes only on a crowded machine

    page.wait_for_function("(() => { const img = document.querySelector('#best-image img');"
                           " return img && img.complete && img.naturalWidth > 0; })()", timeout=60_000)
    best = page.locator("#best-image img").first
    box = best.bounding_box()
    natural = best.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert box["width"] >= 256 and box["height"] >= 256, box
    assert min(natural) >= 256, natural
    assert best.evaluate("img => getComputedStyle(img).imageRendering") in ("pixelated", "crisp-edges")
    assert "Best: Picture" in page.inner_text("#status")
    table = page.inner_text("#scores")
    assert "/ 5" in table and "Aesthetics" in table and "Matches the prompt" in table
    rationales = [t for t in page.locator("#scores .why").all_inner_texts() if t.strip()]
    failures = page.locator("#scores .failed").all_inner_texts()
    assert rationales or failures, "neither a rationale nor an explained failure on the page"
    assert page.locator("#scores img").count() == 2  # a thumbnail per candidate


def test_prompt_refinement_rounds_in_a_real_browser(browser, demo_url):
    """Choose prompt refinement: its settings replace best-of-N's, and each round's prompt and pictures
    appear, the round holding the winner marked."""
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.goto(demo_url)
    page.locator("#prompt textarea").fill("a red circle above a small blue square on a white background")
    page.get_by_label("Prompt refinement").check()
    page.wait_for_selector("#per-round", state="visible", timeout=60_000)
    assert page.locator("#n").is_hidden() and page.locator("#max-rounds").is_visible()
    for setting, value in (("per-round", "2"), ("max-rounds", "2")):
        page.locator(f"#{setting} input[type=number]").fill(value)
        page.locator(f"#{setting} input[type=number]").press("Enter")
    page.click("#generate")
    page.wait_for_selector("#rounds .round", timeout=1_200_000)  # minutes only on a crowded machine
    rounds = page.locator("#rounds .round")
    assert rounds.count() >= 1
    text = page.inner_text("#rounds")
    assert "Round 1" in text and "Prompt" in text and text.count("holds the overall winner") == 1
    pictures = page.locator("#rounds .round img")
    assert pictures.count() == 2 * rounds.count()  # two pictures per round
    box = pictures.first.bounding_box()
    assert box["width"] >= 128 and box["height"] >= 128, box
    assert pictures.first.evaluate("img => getComputedStyle(img).imageRendering") in ("pixelated", "crisp-edges")
    assert "Best: Picture" in page.inner_text("#status")
    if os.environ.get("DEMO_SCREENSHOT"):  # how the README's screenshot is taken
        page.screenshot(path=os.environ["DEMO_SCREENSHOT"], full_page=True)
