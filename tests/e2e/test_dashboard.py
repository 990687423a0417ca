"""The admin dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright
for Python through `executable_path`; never `playwright install`, which downloads): against a
devnet of `rollup up --detach`, the page asks for the token, shows the app and its head, sees
the head pass a transfer's block through the event stream, pauses the sequencer (the node then
refuses eth_sendRawTransaction with -32002) and resumes it. A screenshot is saved under the
test's tmp_path. Against a fake fleet: a wrong token, the read token (it watches, and pausing
says it cannot), the token kept across a reload and forgotten on request.

Without /usr/bin/chromium the test fails and says how to install it: a browser test that
skips quietly is a browser test that never runs."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from eth_account import Account

from rollup.genesis import DEV_KEYS
from services.admin.app import create_app
from services.admin.tokens import Tokens, ensure_tokens
from services.process import free_port
from services.rpcclient import RpcCallError, rpc_call
from services.scaffold import scaffold
from tests.e2e.devnet import Devnet, detached_devnet, rollup
from tests.services.test_admin_events import MovingFleet
from tests.support import wait_for

pytestmark = pytest.mark.e2e

CHAIN_ID = 901001
GWEI = 10**9
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGE_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    app_dir = scaffold(tmp_path_factory.mktemp("app"), "token", "tok", CHAIN_ID)
    with detached_devnet(tmp_path_factory.mktemp("devnet") / "data", str(app_dir)) as net:
        yield net


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Debian chromium under Playwright; a clear failure when it is missing."""
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium` "
            "as root; scripts/setup.sh does). Never `playwright install`."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -c constraints.txt -e '.[dev]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


def admin_of(devnet: Devnet) -> tuple[str, str]:
    """The admin API's URL and admin token, as `rollup status --json` names them."""
    status = rollup("status", "--json", "--data-dir", str(devnet.data_dir))
    assert status.returncode == 0, status.stderr
    admin = json.loads(status.stdout)["admin"]
    return admin["url"], Path(admin["token_file"]).read_text().strip()


def signed_transfer(rpc_url: str) -> str:
    account = Account.from_key(DEV_KEYS[4])
    nonce = rpc_call(rpc_url, "eth_getTransactionCount", account.address, "latest")
    tx = {
        "chainId": CHAIN_ID,
        "nonce": int(nonce, 16),
        "to": "0x" + "43" * 20,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    return "0x" + account.sign_transaction(tx).raw_transaction.hex()


def head_on_page(page: Any) -> int:
    text = page.inner_text('[data-app="tok"] [data-field="head"]')
    return int(text.replace(",", "")) if text.replace(",", "").isdigit() else -1


def state_on_page(page: Any) -> str:
    state: str = page.get_attribute('[data-app="tok"] [data-field="state"]', "data-state")
    return state


@pytest.fixture
def fake_admin(tmp_path: Path) -> Iterator[tuple[str, Tokens, MovingFleet]]:
    """The admin API over a fake fleet, on a real uvicorn (no devnet: fast)."""
    fleet, tokens = MovingFleet(), ensure_tokens(tmp_path / "data")
    app = create_app(fleet, tokens, sample_interval=0.2, scrape_node=lambda url: {})
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    config.timeout_graceful_shutdown = 1
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}", tokens, fleet
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_read_token_watches_but_cannot_pause(
    fake_admin: tuple[str, Tokens, MovingFleet], chromium: Any
) -> None:
    url, tokens, fleet = fake_admin
    page = chromium.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(url + "/")
    page.fill("#token", "not-a-token")
    page.click("#connect")
    page.wait_for_selector("#login-error:has-text('refused')")
    page.fill("#token", tokens.read)
    page.click("#connect")
    page.wait_for_selector('[data-app="alpha"]')
    fleet.head = 42
    page.wait_for_selector('[data-app="alpha"] [data-field="head"]:has-text("42")')
    page.click('[data-app="alpha"] button[data-action="pause"]')
    page.wait_for_selector('[data-app="alpha"] [data-field="message"]:has-text("read token")')
    assert fleet.state == "running"
    page.reload()  # the token is kept for the tab: no second prompt
    page.wait_for_selector('[data-app="alpha"]')
    assert page.is_hidden("#login")
    page.click("#signout")
    page.wait_for_selector("#login")
    assert page.evaluate("sessionStorage.length") == 0
    page.goto(url + "/docs")  # Swagger UI, from our own /vendor: it renders offline
    page.wait_for_selector(".swagger-ui .info .title:has-text('admin API')")
    page.wait_for_selector("[data-path='/v1/events']")


def test_the_dashboard_follows_a_transfer_and_pauses_and_resumes(
    devnet: Devnet, chromium: Any, tmp_path: Path
) -> None:
    url, token = admin_of(devnet)
    rpc_url = devnet.state["apps"][0]["rpc_url"]
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url + "/")
    page.fill("#token", token)
    page.click("#connect")
    page.wait_for_selector('[data-app="tok"]')
    page.wait_for_selector('#live[data-live="on"]')
    assert head_on_page(page) >= 0 and state_on_page(page) == "running"

    tx_hash = rpc_call(rpc_url, "eth_sendRawTransaction", signed_transfer(rpc_url))
    receipt = wait_for(
        lambda: rpc_call(rpc_url, "eth_getTransactionReceipt", tx_hash), "the transfer mined"
    )
    mined_in = int(receipt["blockNumber"], 16)
    wait_for(lambda: head_on_page(page) >= mined_in, f"the page showing block {mined_in}")

    page.click('[data-app="tok"] button[data-action="pause"]')
    page.wait_for_selector('[data-app="tok"] [data-field="state"][data-state="paused"]')
    raw = signed_transfer(rpc_url)
    with pytest.raises(RpcCallError) as refused:
        rpc_call(rpc_url, "eth_sendRawTransaction", raw)
    assert refused.value.code == -32002, refused.value
    page.wait_for_selector('[data-app="tok"] button[data-action="resume"]:not([disabled])')
    page.click('[data-app="tok"] button[data-action="resume"]')
    page.wait_for_selector('[data-app="tok"] [data-field="state"][data-state="running"]')
    assert rpc_call(rpc_url, "eth_sendRawTransaction", raw).startswith("0x")

    page.wait_for_function(  # the log names the pause and the resume
        "document.querySelectorAll('#events li[data-type=\"action\"]').length >= 2"
    )
    screenshot = tmp_path / "dashboard.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"dashboard screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
    assert problems == [], problems
