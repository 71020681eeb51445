"""The /gov page in headless Chromium against a running stack. Playwright drives Debian's
`chromium` (/usr/bin/chromium, or CHROMIUM_PATH) through `executable_path`; it never downloads a
browser. Without Chromium the test skips outside CI and fails in CI (`.ci/run` installs it when
it runs as root). The screenshot lands in tests/artifacts/gov.png."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from govfleet.contracts.status import StatusUpdate
from govfleet.status_client import refresh_status
from tests.integration.test_status_support import api_stack, make_runs, seed, wait_status_ready

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium() -> str:
    """The Chromium binary; skips (outside CI) or fails (in CI) with the reason when it is missing."""
    path = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    reason = (
        f"no Chromium at {path}: install Debian's `chromium` (apt-get install chromium; .ci/run does it "
        "as root) or set CHROMIUM_PATH"
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the /gov browser test: {reason}")
    pytest.skip(reason)


def seed_decline(url: str) -> None:
    """A demo-like decline from 70 % to 50.5 % over the last 90 minutes, and what follows it."""
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        for i in range(90):
            hc = 70 - i * (19.5 / 89)
            conn.execute(
                """INSERT INTO governance_events (timestamp, event_type, holder_control, threshold_level, action)
                   VALUES (%s, 'governance_check', %s, 'good', 'none')""",
                (now - timedelta(minutes=90 - i), round(hc, 2)),
            )
        conn.execute(
            """INSERT INTO governance_events (timestamp, event_type, holder_control, threshold_level, action)
                        VALUES (%s, 'governance_check', 50.5, 'critical', 'pause')""",
            (now,),
        )
        conn.execute(
            """INSERT INTO governance_alerts (timestamp, alert_type, holder_control, message, action_taken)
                        VALUES (%s, 'critical', 50.5, 'Holder control dropped below 51%%', 'paused_redemptions')""",
            (now,),
        )
        conn.execute(
            """INSERT INTO system_pauses (paused_at, pause_reason, pause_type, scope, holder_control_at_pause)
                        VALUES (%s, 'Holder control below 51%%', 'automatic', 'redemptions', 50.5)""",
            (now,),
        )
    runs = make_runs(4, start=now - timedelta(hours=5))
    for run, status in zip(runs, ["success", "refused", "success", "error"], strict=True):
        run["status"] = status
    seed(
        url,
        balance=8_246_000_000,
        runs=runs,
        heartbeat={"id": "hb-page", "time": now - timedelta(minutes=2), "status": "ok"},
    )


async def test_gov_page_shows_status_countdowns_and_the_decline(dev_env, make_database, tmp_path):
    from playwright.async_api import async_playwright, expect

    executable = chromium()
    url = make_database()
    seed_decline(url)
    schedules = [
        {"charter": "COMMUNITY", "cron": "0 */6 * * *"},
        {"charter": "MINUTELY", "cron": "* * * * *"},
        {"charter": "TREASURY", "cron": "0 12 * * 1", "timezone": "America/New_York"},
        {"charter": "OUTREACH", "cron": "0 9 * * 1", "timezone": "Europe/Berlin"},
    ]
    async with api_stack(dev_env, url, tmp_path, schedules=schedules) as stack:
        # An operator paused one charter's schedule: it is shown as paused, not left out.
        [outreach] = [s for s in stack.config.spec.governance.schedules if s.charter == "OUTREACH"]
        await stack.client.get_schedule_handle(outreach.schedule_id).pause(note="operator")
        await refresh_status(stack.client, stack.task_queue, StatusUpdate(schedules_changed=True, source="test"))
        await wait_status_ready(stack)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
            try:
                page = await browser.new_page(viewport={"width": 1200, "height": 1000})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                # A script, style or fetch the page's Content-Security-Policy blocks is reported here.
                blocked: list[str] = []
                page.on(
                    "console",
                    lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None,
                )
                answer = await page.goto(f"{stack.url}/gov")
                assert answer is not None
                headers = await answer.all_headers()
                policy = headers["content-security-policy"]
                assert "frame-ancestors 'none'" in policy and "script-src 'sha256-" in policy, policy
                assert "unsafe-inline" not in policy.replace("style-src-attr 'unsafe-inline'", ""), policy
                assert headers["x-content-type-options"] == "nosniff"
                assert headers["referrer-policy"] == "no-referrer"
                # Waited on with selectors, not with wait_for_function: that evaluates a string in the
                # page, which the page's policy (no 'unsafe-eval') refuses, as it should.
                await page.locator("body[data-loaded]").wait_for(state="attached", timeout=15000)

                assert await page.text_content("#credits") == "8,246,000,000"
                assert (await page.text_content("#credits-usd")).strip() == "≈ $824.60"
                badge = page.locator("#level-badge")
                assert await badge.text_content() == "critical"
                assert "lvl-critical" in await badge.get_attribute("class")
                assert await page.text_content("#pause-state") == "redemptions paused"
                assert await page.text_content("#heartbeat-state") == "up"
                # The fleet: no guardian runs in this stack, so it is named, and health is unhealthy.
                assert await page.text_content("#health-state") == "unhealthy"
                guardian = page.locator('#fleet li[data-workflow-id="governance-guardian"]')
                assert await guardian.get_attribute("data-running") == "false"
                status_wf = page.locator('#fleet li[data-workflow-id="governance-status"]')
                assert await status_wf.get_attribute("data-running") == "true"
                assert "guardian workflow governance-guardian was never started" in await page.text_content("#problems")
                # Upcoming runs: live countdowns, soonest first, all in the future.
                items = page.locator("#upcoming li[data-next-run-at]")
                assert await items.count() == 3
                assert await items.first.locator("strong").text_content() == "Minutely"
                times = [
                    datetime.fromisoformat(
                        (await items.nth(i).get_attribute("data-next-run-at")).replace("Z", "+00:00")
                    )
                    for i in range(3)
                ]
                assert times == sorted(times) and times[0] > datetime.now(UTC) - timedelta(seconds=1)
                first = await items.first.locator(".countdown").text_content()
                # It counts down (within a few seconds: timers are coarse on a loaded machine).
                await expect(items.first.locator(".countdown")).not_to_have_text(first, timeout=5000)
                paused = page.locator(f'#upcoming li[data-paused="{outreach.schedule_id}"]')
                assert await paused.count() == 1 and "paused" in await paused.text_content()
                assert await items.first.get_attribute("data-source") == "temporal"
                # Every time carries its zone: the schedule's own for Treasury (New York), the viewer's too.
                treasury = page.locator("#upcoming li[data-next-run-at]", has_text="Treasury")
                when = await treasury.locator(".sub").text_content()
                assert ("EST" in when or "EDT" in when or "GMT-" in when) and ("UTC" in when or "GMT" in when), when
                # Recent runs with their outcome, and open alerts.
                assert await page.locator("#recent tr").count() == 4
                outcomes = [await page.locator("#recent tr").nth(i).get_attribute("data-outcome") for i in range(4)]
                assert outcomes == ["failed", "succeeded", "refused", "succeeded"], outcomes
                started = await page.locator("#recent tr td.num").first.text_content()
                assert "UTC" in started or "GMT" in started, started
                assert "below 51%" in await page.text_content("#alerts")
                # The chart: the decline, with the four threshold lines.
                assert await page.locator("#chart line[data-threshold]").count() == 4
                # zoomed to the data: the 90-minute decline fills the window
                assert await page.text_content("#chart-window") == "last 95 minutes"
                line = page.locator("#holder-control-line")
                assert int(await line.get_attribute("data-points")) >= 30
                ys = [float(p.split(",")[1]) for p in (await line.get_attribute("points")).split()]
                assert ys[-1] > ys[0]  # SVG y grows downwards: the line goes down over time
                assert await page.text_content("#error") == ""
                assert errors == []
                assert blocked == [], blocked
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "gov.png"), full_page=True)
                assert (ARTIFACTS / "gov.png").stat().st_size > 10_000
            finally:
                await browser.close()
