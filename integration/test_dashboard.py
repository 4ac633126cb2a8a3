"""The web dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): loaded
from a standby JobManager, it shows the masters, the TaskManager and the job RUNNING with its task graph,
live records/s, checkpoints, and the restart and exception of a task failure; after the leader is
SIGKILLed the same page shows the new leader and the job recovered from its latest checkpoint."""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
import signal
from pathlib import Path
from typing import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import wait_for

JOB = Path(__file__).resolve().parent / "checkpointed_count_job.py"
CHROMIUM = "/usr/bin/chromium"
# as root in a closed network: no sandbox, and nothing that calls out to Google's hosts
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def checkpoints(rest: str, job_id: str) -> dict:
    with urllib.request.urlopen(f"{rest}/jobs/{job_id}/checkpoints", timeout=10) as answer:
        return json.load(answer)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: `make install` installs Debian's chromium package"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def test_dashboard_from_a_standby_follows_a_leader_kill(cluster_factory: Callable[..., Cluster], browser: Browser,
                                                         tmp_path: Path) -> None:
    cluster = cluster_factory(**{"restart-strategy.type": "fixed-delay",
                                 "restart-strategy.fixed-delay.delay": "100 ms"})
    leader = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    # 300 records/s; the first attempt fails at record 600, ~2 s in, after several checkpoints (every 200 ms)
    result = cluster.flink("run", "-d", "-py", str(JOB), str(tmp_path / "out"), "1000000", "300", "600")
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = cluster.job_id(result)

    page: Page = browser.new_page()
    page.goto(standby.rest_address() + "/")
    expect(page.get_by_test_id("served-by-role")).to_have_text("standby")
    expect(page.get_by_test_id("leader")).to_have_text(leader.rest_address())
    expect(page.locator('[data-testid="master"][data-role="standby"]')).to_have_count(1)
    expect(page.locator('[data-testid="master"][data-role="leader"]')).to_have_count(1)
    expect(page.get_by_test_id("taskmanager")).to_have_count(1)
    row = page.locator(f'[data-testid="job"][data-job-id="{job_id}"]')
    expect(row.get_by_test_id("job-state")).to_have_text("RUNNING", timeout=20_000)

    row.get_by_role("link").click()  # the job's own view
    expect(page.get_by_test_id("job-state")).to_have_text("RUNNING")
    expect(page.get_by_test_id("vertex")).to_have_count(2)
    expect(page.get_by_test_id("parallelism").first).to_have_text("2")
    wait_for(lambda: int(page.get_by_test_id("records-per-second").inner_text()) > 0, 15,
             what="a live records/s figure")
    wait_for(lambda: int(page.get_by_test_id("checkpoints-completed").inner_text()) >= 2, 20,
             what="completed checkpoints in the page")
    expect(page.get_by_test_id("checkpoint").first).to_contain_text("COMPLETED")
    # the task failure: a restart, its exception with the task that threw it, the checkpoint restored
    expect(page.get_by_test_id("restarts")).to_have_text("1")
    expect(page.get_by_test_id("exception")).to_have_count(1)
    expect(page.get_by_test_id("exception")).to_contain_text("failing once at 600")
    expect(page.get_by_test_id("exception")).to_contain_text("Source: numbers")
    expect(page.get_by_test_id("restored")).to_have_text(re.compile(r"checkpoint \d+"))
    before_kill = page.get_by_test_id("restored").inner_text()
    restored_id = int(before_kill.split()[1])
    wait_for(lambda: checkpoints(standby.rest_address(), job_id)["latest"]["completed"]["id"] > restored_id, 20,
             what="a checkpoint completed after the restore")

    leader.kill(signal.SIGKILL)
    # the same page, still served by the standby: it becomes the leader and recovers the job
    expect(page.get_by_test_id("job-leader")).to_have_text(standby.rest_address(), timeout=30_000)
    expect(page.get_by_test_id("served-by-role")).to_have_text("leader")
    expect(page.get_by_test_id("restored")).not_to_have_text(before_kill, timeout=20_000)  # a later one
    expect(page.get_by_test_id("restored")).to_have_text(re.compile(r"checkpoint \d+"))
    expect(page.get_by_test_id("job-state")).to_have_text("RUNNING")
    wait_for(lambda: int(page.get_by_test_id("records-per-second").inner_text()) > 0, 15,
             what="records flowing again after the recovery")

    page.goto(standby.rest_address() + "/#/")
    expect(page.get_by_test_id("leader")).to_have_text(standby.rest_address())
    expect(page.get_by_test_id("leader-changes")).to_have_text("1")
    # newest first, under the header row: the standby, (the election while nobody led, if this JobManager
    # saw the old leader's node go before the new one came), the killed leader
    history = page.locator('[data-testid="election-history"] tr')
    expect(history.nth(1)).to_contain_text(standby.rest_address())
    expect(history.last).to_contain_text(leader.rest_address())
    assert history.count() in (3, 4)
    page.close()
