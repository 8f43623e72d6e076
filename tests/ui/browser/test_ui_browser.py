"""The dashboard as a person uses it, in headless Chromium over a store the quickstart filled.

Every page reachable from the overview (its navigation and the links of each page, a bounded crawl) answers 200,
logs no console error, draws every chart, and asks nothing of another origin; a screenshot of each is kept. Then a
person signs in with the admin token, promotes a version, sees the overview change, rolls it back and sees it change
back; signed out there is no action form, and a POST without the token (or with a wrong CSRF token) is refused and
changes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
from tests.ui.browser.conftest import ADMIN_TOKEN, MODEL, Dashboard, Shots

MAX_PAGES = 60
PER_SHAPE = 3
"""At most this many pages of one shape (the same route with the same query keys: one per window's feature, one
per filter value...), so the crawl covers every kind of page before the bound."""
PROMOTED = 4
"""The quickstart leaves v5 (v4 refitted) in production and v1-v4 in the repository: the person promotes v4."""
ALL_DRAWN = "() => [...document.querySelectorAll('div.chart')].every(c => c.dataset.drawn === 'yes')"


@dataclass
class Visit:
    """One page as the browser saw it."""

    url: str
    status: int
    console_errors: list[str] = field(default_factory=list)
    charts: int = 0
    drawn: int = 0
    action_forms: int = 0
    links: list[str] = field(default_factory=list)
    screenshot: Path | None = None


@dataclass
class Crawl:
    """Every page visited from the overview, the links not followed, and every request the browser made."""

    visits: list[Visit]
    data_links: dict[str, int]
    unbuilt: set[str]
    requests: list[str]


@functools.cache
def _registered() -> tuple[list[re.Pattern[str]], set[str]]:
    """Patterns of every page's ``/ui`` path, and the areas whose page module is still empty."""
    import importlib

    from loopline.ui.pages import MODULES, all_pages

    patterns = [re.compile("^/ui" + _template(page.path) + "$") for page in all_pages()]
    patterns.append(re.compile("^/ui/login$"))
    empty = {name for name in MODULES if not importlib.import_module(f"loopline.ui.pages.{name}").PAGES}
    return patterns, empty


def _template(path: str) -> str:
    """A page path's regular expression: ``{name}`` matches one segment, ``{name:path}`` several."""
    escaped = re.escape(path)
    escaped = re.sub(r"\\\{[^/]+?:path\\\}", ".+", escaped)
    return re.sub(r"\\\{[^/]+?\\\}", "[^/]+", escaped)


def shape(url: str) -> tuple[str, tuple[str, ...]]:
    """The route a URL's path matches (or the path itself) and its query's keys."""
    parts = urlsplit(url)
    patterns, _ = _registered()
    route = next((p.pattern for p in patterns if p.match(parts.path)), parts.path)
    return route, tuple(sorted(parse_qs(parts.query, keep_blank_values=True)))


def unbuilt(path: str) -> bool:
    """Whether ``path`` lies in an area whose pages are not written yet (its module's PAGES is empty): a link there
    cannot resolve until they are. Any other link must answer 200."""
    patterns, empty = _registered()
    if any(pattern.match(path) for pattern in patterns):
        return False
    area = path.removeprefix("/ui/").split("/", 1)[0]
    return area in empty


def _shot_name(url: str) -> str:
    parts = urlsplit(url)
    name = (parts.path.removeprefix("/ui").strip("/") or "overview") + (f"-{parts.query}" if parts.query else "")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120] + ".png"


def visit(context: Any, url: str, shot: Path | None) -> Visit:
    """Load ``url`` in a new tab: status, console errors and uncaught exceptions, charts, action forms, links;
    a full-page screenshot to ``shot``."""
    page = context.new_page()
    seen = Visit(url=url, status=0)
    page.on("console", lambda message: _console(seen, message))
    page.on("pageerror", lambda error: seen.console_errors.append(f"uncaught: {error}"))
    try:
        answer = page.goto(url, wait_until="load")
        seen.status = answer.status if answer is not None else 0
        seen.charts = page.locator("div.chart").count()
        if seen.charts:
            from playwright.sync_api import TimeoutError as TimedOut

            with contextlib.suppress(TimedOut):  # an undrawn chart is reported by the count below
                page.wait_for_function(ALL_DRAWN, timeout=15_000)
        seen.drawn = page.locator("div.chart[data-drawn='yes']").count()
        seen.action_forms = page.locator("form[action*='/actions/']").count()
        seen.links = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
        if shot is not None:
            page.screenshot(path=str(shot), full_page=True)
            seen.screenshot = shot
    finally:
        page.close()
    return seen


def _console(seen: Visit, message: Any) -> None:
    if message.type == "error":
        where = message.location.get("url") or ""
        seen.console_errors.append(f"{message.text} ({where})" if where else message.text)


def crawl(context: Any, origin: str, shots: Shots | None, limit: int = MAX_PAGES) -> Crawl:
    """Breadth-first from the overview over same-origin ``/ui`` links (the navigation first), at most ``limit``
    pages and :data:`PER_SHAPE` of each shape; ``/api`` links are fetched as data."""
    requests: list[str] = []

    def record(request: Any) -> None:
        requests.append(request.url)

    context.on("request", record)
    start = f"{origin}/ui/"
    queue, queued = deque([start]), {start}
    visits: list[Visit] = []
    data_links: dict[str, int] = {}
    not_built: set[str] = set()
    shapes: Counter[tuple[str, tuple[str, ...]]] = Counter()
    while queue and len(visits) < limit:
        url = queue.popleft()
        seen = visit(context, url, None if shots is None else shots.path_for(_shot_name(url)))
        visits.append(seen)
        for href in seen.links:
            parts = urlsplit(href)
            if f"{parts.scheme}://{parts.netloc}" != origin or parts.path.startswith("/ui/static/"):
                continue
            target = urlunsplit(parts._replace(fragment=""))
            if parts.path.startswith("/api/") and target not in data_links:
                data_links[target] = context.request.get(target).status
            elif unbuilt(parts.path):
                not_built.add(parts.path)
            elif target not in queued and shapes[shape(target)] < PER_SHAPE:
                shapes[shape(target)] += 1
                queued.add(target)
                queue.append(target)
    context.remove_listener("request", record)
    return Crawl(visits, data_links, not_built, requests)


@pytest.fixture(scope="session")
def signed_out(browser: Any) -> Any:
    """The browser with no session cookie."""
    browser.clear_cookies()
    return browser


@pytest.fixture(scope="session")
def crawled(signed_out: Any, dashboard: Dashboard, screenshots: Shots) -> Crawl:
    """The crawl of ``loopline ui``, signed out."""
    return crawl(signed_out, dashboard.origin, screenshots)


def test_every_page_reachable_from_the_overview_answers_200(crawled: Crawl, dashboard: Dashboard) -> None:
    failed = [f"{v.url}: {v.status}" for v in crawled.visits if v.status != 200]
    failed += [f"{url} (data): {status}" for url, status in crawled.data_links.items() if status != 200]
    assert not failed, f"pages that did not answer 200 (server log {dashboard.log}):\n" + "\n".join(failed)
    nav = {urlsplit(v.url).path for v in crawled.visits}
    assert "/ui/" in nav
    _, empty = _registered()
    from loopline.ui.pages import all_pages

    top = {f"/ui{page.path}" for page in all_pages() if page.nav}
    assert top <= nav, f"navigation pages never reached: {sorted(top - nav)}"
    if not empty:
        assert not crawled.unbuilt, f"links into areas without pages: {sorted(crawled.unbuilt)}"


def test_no_page_logs_a_console_error(crawled: Crawl) -> None:
    errors = [f"{v.url}: {error}" for v in crawled.visits for error in v.console_errors]
    assert not errors, "console errors (a CSP violation shows here too):\n" + "\n".join(errors)


def test_every_chart_is_drawn(crawled: Crawl) -> None:
    undrawn = [f"{v.url}: {v.drawn} of {v.charts} charts drawn" for v in crawled.visits if v.drawn != v.charts]
    assert not undrawn, "\n".join(undrawn)
    _, empty = _registered()
    if "monitoring" not in empty:  # the monitoring pages chart drift and accuracy over the windows the test closed
        assert sum(v.charts for v in crawled.visits) > 0, "no page drew a chart"


def test_the_browser_asks_nothing_of_another_origin(crawled: Crawl, dashboard: Dashboard) -> None:
    assert crawled.requests, "the browser's requests were not recorded"
    foreign = sorted({url for url in crawled.requests if not url.startswith((f"{dashboard.origin}/", "data:"))})
    assert not foreign, f"requests off the dashboard's origin {dashboard.origin}: {foreign}"
    scripts = {urlsplit(url).path for url in crawled.requests}
    assert {"/ui/static/vendor/echarts.min.js", "/ui/static/ui.js", "/ui/static/ui.css"} <= scripts


def test_a_screenshot_of_every_page_is_kept(crawled: Crawl, screenshots: Shots) -> None:
    shots = [v.screenshot for v in crawled.visits]
    assert all(shot is not None and shot.stat().st_size > 1000 for shot in shots), shots
    assert {shot.parent for shot in shots if shot is not None} == {screenshots.folder}
    assert len(set(shots)) == len(shots), "two pages saved to the same screenshot"


def test_echarts_is_served_from_the_package(browser: Any, dashboard: Dashboard) -> None:
    answer = browser.request.get(f"{dashboard.origin}/ui/static/vendor/echarts.min.js")
    assert answer.status == 200
    assert "javascript" in answer.headers["content-type"]
    packaged = files("loopline.ui").joinpath("static", "vendor", "echarts.min.js").read_bytes()
    assert answer.body() == packaged and len(packaged) > 500_000


def test_signed_out_there_is_no_action_form(crawled: Crawl) -> None:
    with_forms = [f"{v.url}: {v.action_forms}" for v in crawled.visits if v.action_forms]
    assert not with_forms, "action forms shown without signing in:\n" + "\n".join(with_forms)


# --- a person with the admin token ---------------------------------------------------------------------------


def production(dashboard: Dashboard) -> tuple[int, str]:
    """The production version of the quickstart's model and when it was promoted, from the overview's data."""
    [card] = [m for m in httpx.get(f"{dashboard.origin}/api/", timeout=30).json()["models"] if m["name"] == MODEL]
    return card["production"]["version"], card["production"]["promoted_at"]


def overview_badge(page: Any, dashboard: Dashboard) -> str:
    """What the overview's card of the model says about production, as the person reads it."""
    page.goto(f"{dashboard.origin}/ui/")
    return str(page.locator(f"#model-{MODEL} .badge.good").first.inner_text())


@pytest.fixture
def person(browser: Any, dashboard: Dashboard, crawled: Crawl) -> Iterator[Any]:
    """A tab signed in through the login form (after the signed-out crawl); signed out again afterwards."""
    page = browser.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{dashboard.origin}/ui/login")
    page.fill("input[name=token]", ADMIN_TOKEN)
    page.click("form.login button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/\?notice=signed"))
    try:
        yield page
    finally:
        browser.clear_cookies()
        page.close()


def _submit(page: Any, form: Any) -> Any:
    """Click ``form``'s button (accepting its confirmation) and return the answer to its POST."""
    with page.expect_response(lambda answer: answer.request.method == "POST") as posted:
        form.locator("button[type=submit]").click()
    page.wait_for_load_state("load")
    return posted.value


def _promote_in_browser(page: Any, dashboard: Dashboard, version: int) -> bool:
    """Promote through the model page's form when that page has one for ``version``; False when it has none."""
    if unbuilt(f"/ui/models/{MODEL}"):
        return False
    answer = page.goto(f"{dashboard.origin}/ui/models/{MODEL}")
    assert answer is not None and answer.status == 200
    forms = page.locator("form[action$='/actions/promote']")
    for index in range(forms.count()):
        form = forms.nth(index)
        hidden = form.locator("input[name=version][type=hidden]")
        if hidden.count() and hidden.first.get_attribute("value") == str(version):
            break
        if form.locator("input[name=version]:not([type=hidden])").count():
            form.locator("input[name=version]").fill(str(version))
            break
    else:
        pytest.fail(f"/ui/models/{MODEL} offers no promote form for version {version}")
    form.locator("input[name=reason]").fill("browser test: promote")
    assert _submit(page, form).status == 303
    return True


def test_promote_then_roll_back_as_a_person(person: Any, dashboard: Dashboard, screenshots: Shots) -> None:
    before, _ = production(dashboard)
    assert before != PROMOTED
    assert overview_badge(person, dashboard) == f"production v{before}"
    person.screenshot(path=str(screenshots.path_for("overview-signed-in.png")), full_page=True)
    assert person.locator(f"#model-{MODEL} form[action$='/actions/rollback']").count() == 1
    assert person.locator("#open-alerts form[action$='/actions/acknowledge']").count() > 0, "alerts to acknowledge"

    if not _promote_in_browser(person, dashboard, PROMOTED):  # the models page is not written yet on this branch
        answer = person.request.post(
            f"{dashboard.origin}/api/actions/promote",
            data={"model": MODEL, "version": PROMOTED, "reason": "browser test: promote"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert answer.status == 200, answer.text()
    assert overview_badge(person, dashboard) == f"production v{PROMOTED}"
    assert production(dashboard)[0] == PROMOTED

    rollback = person.locator(f"#model-{MODEL} form[action$='/actions/rollback']")
    rollback.locator("input[name=reason]").fill("browser test: roll back")
    assert _submit(person, rollback).status == 303
    landed = urlsplit(person.url)
    assert "rolled back" in landed.query.replace("%20", " ").replace("+", " ")
    if not unbuilt(landed.path):
        assert person.locator(".notice").inner_text() == f"{MODEL} rolled back to version {before}."
    assert overview_badge(person, dashboard) == f"production v{before}"
    assert production(dashboard)[0] == before


def test_acknowledge_an_alert_as_a_person(person: Any, dashboard: Dashboard) -> None:
    def open_alerts() -> list[int]:
        return [alert["id"] for alert in httpx.get(f"{dashboard.origin}/api/", timeout=30).json()["open_alerts"]]

    before = open_alerts()
    person.goto(f"{dashboard.origin}/ui/")
    first = person.locator("#open-alerts form[action$='/actions/acknowledge']").first
    alert = int(first.locator("input[name=alert]").get_attribute("value"))
    assert alert in before
    assert _submit(person, first).status == 303
    assert person.locator(".notice").inner_text() == f"alert {alert} acknowledged."
    assert open_alerts() == [other for other in before if other != alert]
    assert person.locator(f"#open-alerts input[name=alert][value='{alert}']").count() == 0


def test_a_form_with_a_wrong_csrf_token_is_refused(person: Any, dashboard: Dashboard) -> None:
    before = production(dashboard)
    person.goto(f"{dashboard.origin}/ui/")
    rollback = person.locator(f"#model-{MODEL} form[action$='/actions/rollback']")
    rollback.locator("input[name=csrf]").evaluate("field => { field.value = '0'.repeat(40) }")
    answer = _submit(person, rollback)
    assert answer.status == 403
    assert person.locator("p.error").inner_text() == "the form's CSRF token is missing or wrong."
    assert production(dashboard) == before


REFUSED = {
    "form-without-session": ("/ui/actions/promote", {"data": {"model": MODEL, "version": "4", "csrf": "0" * 40}}),
    "api-without-token": ("/api/actions/promote", {"json": {"model": MODEL, "version": PROMOTED}}),
    "api-with-a-wrong-token": (
        "/api/actions/promote",
        {"json": {"model": MODEL, "version": PROMOTED}, "headers": {"Authorization": "Bearer not-the-token"}},
    ),
    "rollback-without-token": ("/api/actions/rollback", {"json": {"model": MODEL}}),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_action_without_the_token_is_refused(dashboard: Dashboard, crawled: Crawl, case: str) -> None:
    path, send = REFUSED[case]
    before = production(dashboard)
    answer = httpx.post(f"{dashboard.origin}{path}", timeout=30, **send)
    assert answer.status_code in (401, 403), answer.text
    assert production(dashboard) == before


def test_serve_ui_mounts_the_same_dashboard(browser: Any, served_dashboard: Dashboard, screenshots: Shots) -> None:
    browser.clear_cookies()
    assert httpx.get(f"{served_dashboard.origin}/health", timeout=30).status_code == 200
    from loopline.ui.pages import all_pages

    tops = [f"{served_dashboard.origin}/ui{page.path}" for page in all_pages() if page.nav]
    for url in tops:
        seen = visit(browser, url, None)
        assert seen.status == 200, f"{url}: {seen.status} (server log {served_dashboard.log})"
        assert not seen.console_errors, (url, seen.console_errors)
        assert seen.drawn == seen.charts, (url, seen.drawn, seen.charts)
    home = visit(browser, f"{served_dashboard.origin}/ui/", screenshots.path_for("serve-ui-overview.png"))
    assert home.status == 200 and f"/ui/models/{MODEL}" in {urlsplit(link).path for link in home.links}
