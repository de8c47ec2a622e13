"""The web page in a real browser (Debian's chromium driven by Playwright): sign in, a check that shows three
agencies and "Review required", an invalid form's error summary; axe-core on every page; screenshots kept
in test-artefacts/."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright

from audit.reader import read_events
from lateral.demo import Federation, Prepared
from lateral.demo.web import DEMO_USERS
from tests.integration.truth import person_of

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts"


def _chromium_or_skip() -> None:
    if not CHROMIUM.exists():
        reason = f"no browser at {CHROMIUM} (Debian: apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: CI must run the browser tests")
        pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    _chromium_or_skip()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        await launched.close()


async def accessible(page: Page, name: str) -> None:
    """No serious or critical axe-core violation on the page; a screenshot for the record."""
    ARTEFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
    results: Any = await Axe().run(page)
    serious = [v["id"] for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], name


async def sign_in(page: Page, federation: Federation, user: str = "manager") -> None:
    await page.goto(f"{federation.web_url}/")
    assert page.url.endswith("/sign-in")
    await accessible(page, "sign-in")
    await page.fill("#username", user)
    await page.fill("#password", DEMO_USERS[user][2])
    await page.click("button:has-text('Sign in')")
    await page.wait_for_url(f"{federation.web_url}/")


async def test_a_worker_signs_in_and_checks_a_child_known_to_three_agencies(
    browser: Browser, federation: Federation, prepared: Prepared
) -> None:
    page = await browser.new_page()
    await sign_in(page, federation)
    await accessible(page, "check-form")
    a = prepared.examples.three_agencies.args
    year, month, day = a["dob"].split("-")
    await page.fill("#given_name", a["given-name"])
    await page.fill("#family_name", a["family-name"])
    await page.fill("#dob-day", day)
    await page.fill("#dob-month", month)
    await page.fill("#dob-year", year)
    await page.fill("#postcode", a["postcode"])
    await page.select_option("#purpose", a["purpose"])
    await page.fill("#case_ref", a["case-ref"])
    await page.fill("#justification", a["justification"])
    await page.click("button:has-text('Check')")
    await page.wait_for_selector("h1:has-text('Check result')")
    await accessible(page, "result")
    assert await page.locator("#review-title").inner_text() == "Review required"
    assert await page.locator("tbody tr").count() == 4
    assert await page.locator("tbody .govuk-tag:has-text('Known')").count() == 3


async def test_an_invalid_form_shows_the_error_summary(browser: Browser, federation: Federation) -> None:
    page = await browser.new_page()
    await sign_in(page, federation, "worker")
    await page.fill("#given_name", "Ann")
    await page.fill("#dob-day", "31")
    await page.fill("#dob-month", "2")
    await page.fill("#dob-year", "2012")
    await page.click("button:has-text('Check')")
    summary = page.locator(".govuk-error-summary")
    await summary.wait_for()
    await accessible(page, "error-summary")
    assert "Date of birth must be a real date" in await summary.inner_text()
    assert await page.title() == "Error: Check a person – Lateral checks"


async def test_a_wrong_password_is_refused(browser: Browser, federation: Federation) -> None:
    page = await browser.new_page()
    await page.goto(f"{federation.web_url}/sign-in")
    await page.fill("#username", "manager")
    await page.fill("#password", "not-it")
    await page.click("button:has-text('Sign in')")
    assert "The username or password is not right." in await page.locator(".govuk-error-summary").inner_text()


async def test_a_household_check_and_the_recent_checks_page(
    browser: Browser, federation: Federation, prepared: Prepared
) -> None:
    child = person_of(prepared, prepared.examples.three_agencies)
    page = await browser.new_page()
    await sign_in(page, federation)
    await page.click("a:has-text('Check a household')")
    await accessible(page, "household-form")
    await page.fill("#address", child.address.line)
    await page.fill("#postcode", child.address.postcode)
    await page.fill("#case_ref", "MASH-0142")
    await page.fill("#justification", "Fire risk at the family home")
    await page.click("button:has-text('Check household')")
    await page.wait_for_selector("h1:has-text('Check result')")
    await accessible(page, "household-result")
    social = page.locator("tbody tr", has_text="Social Care")
    assert "people here" in await social.inner_text() or "person here" in await social.inner_text()
    await page.click("a:has-text('Your recent checks')")
    await accessible(page, "recent")
    assert "MASH-0142" in await page.locator("tbody").inner_text()
    assert await page.locator("tbody tr").count() == 1


async def test_an_auditor_reads_and_verifies_the_log_and_a_worker_cannot(
    browser: Browser, federation: Federation, prepared: Prepared
) -> None:
    worker = await browser.new_page()
    await sign_in(worker, federation, "worker")
    await worker.goto(f"{federation.web_url}/audit")
    assert await worker.locator("h1").inner_text() == "You cannot see this page"
    await accessible(worker, "forbidden")
    page = await browser.new_page()
    await sign_in(page, federation, "auditor")
    await page.click("a:has-text('Audit log')")
    await accessible(page, "audit-log")
    assert await page.locator("tbody tr").count() >= 1
    await page.click("button:has-text('Verify the log')")
    await page.wait_for_selector("h1:has-text('Audit log verification')")
    await accessible(page, "audit-verified")
    assert await page.locator(".govuk-panel__title").inner_text() == "Verified"
    events = read_events(prepared.audit["broker"].url)
    reads = [e.payload for e in events if e.kind == "audit-read" and (e.payload or {}).get("via") == "web"]
    assert [r["action"] for r in reads if r][-2:] == ["list", "verify"]


async def test_a_manager_sees_review_candidates_and_learns_who_one_is_and_a_worker_cannot(
    browser: Browser, federation: Federation
) -> None:
    page = await browser.new_page()
    await sign_in(page, federation)
    await page.click("a:has-text('Review candidates')")
    await page.wait_for_url(f"{federation.web_url}/candidates")
    assert await page.locator("h1").inner_text() == "Review candidates"
    rows = page.locator("tbody tr")
    assert await rows.count() >= 3
    first = await rows.first.inner_text()
    assert "Priority" in first
    await accessible(page, "candidates")
    await rows.first.locator("a:has-text('Request a review')").click()
    await page.wait_for_url(f"{federation.web_url}/candidates/*/review")
    await accessible(page, "review-form")
    await page.click("button:has-text('Request the review')")
    summary = page.locator(".govuk-error-summary")
    assert "Case reference is required for purpose proactive-review" in await summary.inner_text()
    assert "Why you need to know is required for purpose proactive-review" in await summary.inner_text()
    await page.fill("#case_ref", "PRO-0042")
    await page.fill("#justification", "Recent activity at three agencies")
    await page.click("button:has-text('Request the review')")
    await page.wait_for_selector("h1:has-text('Review')")
    table = await page.locator("table").inner_text()
    assert table.count("Identified") >= 2
    await accessible(page, "review")
    await page.close()
    # A social worker's role has no permission for the purpose: the page says so, and lists nobody.
    worker = await browser.new_page()
    await sign_in(worker, federation, "worker")
    response = await worker.goto(f"{federation.web_url}/candidates")
    assert response is not None
    assert response.status == 403
    assert "You cannot see the candidates" in await worker.locator(".govuk-error-summary").inner_text()
    assert await worker.locator("tbody tr").count() == 0
    await worker.close()
