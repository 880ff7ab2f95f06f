"""The dashboard, end to end: the real `ecs-reconciler run` daemon against the
local AWS emulator, watched by headless Chromium through Selenium.

Run it with `scripts/browser-test.sh` (installs chromium + chromedriver when
missing). It needs `$ECS_RECONCILER_BIN` (default
`$CARGO_TARGET_DIR/debug/ecs-reconciler`) and the emulator's venv python.
Screenshots, the daemon's log and the emulator's log go to tests/artifacts/.

The tests share one emulator, one daemon and one browser page, in file order:
1. the page shows the six seed resources in sync and the ALB's DNS name;
2. a drift injected behind the page's back shows up live, then is corrected;
3. an invalid YAML edit shows the error with file:line:col, a fix clears it;
4. a phone-sized viewport gets the single-column layout;
5. without EventSource the page polls /api/v1/status;
6. when the daemon stops, the page says it is disconnected (and the open
   event stream does not hold up the daemon's shutdown).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
EMULATOR = REPO / "tests" / "emulator" / "emulator.py"
AWSCTL = REPO / "tests" / "emulator" / "awsctl.py"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 15.0  # every wait for the page to react is bounded by this

UNITS = [
    "security-group/LoadBalancerGroup",
    "security-group/EC2InstanceWithLoadBalancer",
    "cluster/nestjs-cluster",
    "service/nestjs-cluster/nestjs-api",
    "target-group/nestjs-api-tg",
    "load-balancer/nestjs-api-alb",
]
DRIFTED_UNIT = "security-group/LoadBalancerGroup"
# A console user's access key, named by the emulator's CloudTrail events.
CONSOLE_KEY = "AKIACONSOLEADMIN"
CONSOLE_ARN = "arn:aws:iam::123456789012:user/console-admin"


def binary() -> Path:
    if os.environ.get("ECS_RECONCILER_BIN"):
        return Path(os.environ["ECS_RECONCILER_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache/ecs-reconciler/target")
    return Path(target) / "debug" / "ecs-reconciler"


def wait_until(what: str, check, timeout: float = WAIT, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def atomic_write(path: Path, text: str) -> None:
    """What editors do: write a sibling, then rename it over the file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def stop(proc: subprocess.Popen | None, sig: int, grace: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class Stack:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.emulator: subprocess.Popen | None = None
        self.daemon: subprocess.Popen | None = None
        self.endpoint = ""
        self.url = ""
        self.config = tmp / "seed.yaml"
        self.seed_text = (REPO / "examples" / "seed.yaml").read_text()
        self.token = "browser-0123456789abcdef0123"
        self.token_file = tmp / "control-token"

    def awsctl(self, *args: str, access_key: str = "test") -> dict:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": "test"}
        out = subprocess.run([sys.executable, str(AWSCTL), "--endpoint", self.endpoint, *args],
                             capture_output=True, text=True, timeout=30, env=env)
        assert out.returncode == 0, f"awsctl {args}: {out.stderr}"
        return json.loads(out.stdout)

    def status(self) -> dict:
        code, body = http_get(f"{self.url}/api/v1/status")
        assert code == 200, f"/api/v1/status answered {code}"
        return json.loads(body)

    def daemon_log(self) -> str:
        path = self.tmp / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def stack():
    exe = binary()
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} is not an executable; build it (cargo build --bin ecs-reconciler) or set ECS_RECONCILER_BIN")
    s = Stack(Path(tempfile.mkdtemp(prefix="ecs-reconciler-browser-")))
    started = time.monotonic()
    try:
        port_file = s.tmp / "emulator.port"
        with open(s.tmp / "emulator.log", "wb") as log:
            s.emulator = subprocess.Popen(
                [sys.executable, str(EMULATOR), "--host", "127.0.0.1", "--port", "0",
                 "--port-file", str(port_file), "--seed", "--scheduler-delay", "0.2"],
                stdout=log, stderr=subprocess.STDOUT)

        def emulator_up():
            assert s.emulator.poll() is None, "emulator exited:\n" + (s.tmp / "emulator.log").read_text()
            return port_file.exists() and port_file.read_text().strip()

        s.endpoint = f"http://127.0.0.1:{wait_until('the emulator (seeded)', emulator_up, timeout=45)}"
        # EventBridge events through the shipped rules and queue, a console
        # user's key named (tests/emulator/events.py).
        events = json.dumps({
            "enabled": True, "delay": 0.5,
            "identities": {CONSOLE_KEY: {"arn": CONSOLE_ARN, "source_ip": "203.0.113.7"}},
            "stack": {"template": str(REPO / "deploy" / "events" / "template.yaml"),
                      "parameters": {"ClusterArns": "arn:aws:ecs:us-east-1:123456789012:cluster/nestjs-cluster"}},
        }).encode()
        req = urllib.request.Request(f"{s.endpoint}/_emulator/events", data=events, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            queue_url = json.load(resp)["queue_url"]
        s.config.write_text(s.seed_text)
        s.token_file.write_text(s.token + "\n")
        port = free_port()
        s.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "AWS_ENDPOINT_URL": s.endpoint, "AWS_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               # The emulator reads consistently: a short window keeps the
               # check after a correction quick (as the e2e suite does).
               "ECS_RECONCILER_CONSISTENCY_WINDOW": "1s"}
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.pop(key, None)
        with open(s.tmp / "daemon.log", "wb") as log:
            s.daemon = subprocess.Popen(
                [str(exe), "run", "--config", str(s.config), "--listen", f"127.0.0.1:{port}", "--resync", "3s",
                 "--control-token-file", str(s.token_file), "--events-queue", queue_url],
                env=env, stdout=log, stderr=subprocess.STDOUT)

        def daemon_ready():
            assert s.daemon.poll() is None, "daemon exited:\n" + s.daemon_log()
            return http_get(f"{s.url}/readyz")[0] == 200

        wait_until("the daemon's /readyz", daemon_ready, timeout=30)
        print(f"\nstack up in {time.monotonic() - started:.1f} s (emulator {s.endpoint}, daemon {s.url})")
        yield s
    finally:
        stop(s.daemon, signal.SIGTERM, 10)
        stop(s.emulator, signal.SIGTERM, 5)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name in ("daemon.log", "emulator.log"):
            if (s.tmp / name).exists():
                shutil.copy(s.tmp / name, ARTIFACTS / f"browser-{name}")
        shutil.rmtree(s.tmp, ignore_errors=True)


def chrome(width: int, height: int, mobile: bool = False) -> webdriver.Chrome:
    profile = tempfile.mkdtemp(prefix="ecs-reconciler-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    if mobile:
        # Chromium keeps a desktop window wider than a phone; emulate the viewport.
        options.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2, "touch": True}})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.profile_dir = profile  # removed by close()
    return driver


def close(driver: webdriver.Chrome) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(driver.profile_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def page(stack):
    driver = chrome(1280, 900)
    try:
        yield driver
    finally:
        close(driver)


def screenshot(driver: webdriver.Chrome, name: str, full: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"dashboard-{name}.png"
    if full:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(shot["data"]))
    else:
        driver.save_screenshot(str(path))
    return path


def card_states(driver: webdriver.Chrome) -> dict[str, str]:
    return driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('article.unit')]"
        ".map(c => [c.dataset.unit, c.dataset.state]))")


def wait_page(driver: webdriver.Chrome, what: str, script: str, *args, timeout: float = WAIT):
    """Polls a JS expression in the page (arguments[i] = args[i]) until it is truthy."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
            lambda d: d.execute_script(f"return {script}", *args), message=what)
    except TimeoutException as e:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}") from e


def severe_console_messages(driver: webdriver.Chrome) -> list[str]:
    try:
        return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    except WebDriverException:
        return []


def test_1_page_shows_the_seed_in_sync_and_the_api_address(stack, page):
    page.get(f"{stack.url}/")
    assert page.title == "ecs-reconciler"
    wait_until("the six seed resources in sync",
               lambda: card_states(page) == {u: "in-sync" for u in UNITS}, timeout=WAIT)
    # State is written out, not colour alone. Read in one script: the cards
    # are re-rendered on every status event, so an element found in one call
    # may be stale by the next.
    assert page.execute_script(
        "return [...document.querySelectorAll('article.unit .state-text')].map(e => e.innerText)"
    ) == ["In sync"] * len(UNITS)
    assert page.find_element(By.ID, "overall").text.endswith("All 6 resources in sync")
    assert wait_page(page, "the live connection badge", "document.getElementById('conn').dataset.conn === 'live'")
    assert page.find_element(By.ID, "leader").text == "leader"

    dns = json.loads(http_get(f"{stack.endpoint}/_emulator/seed")[1])["load_balancer_dns"]
    link = page.find_element(By.CSS_SELECTOR, "#addresses a.dns")
    assert link.text == dns
    assert link.get_attribute("href") == f"http://{dns}/"
    assert page.find_element(By.ID, "config-error").is_displayed() is False
    assert page.find_element(By.ID, "timeline").get_attribute("aria-live") == "polite"
    # The client-side API budgets: one row per AWS rate class, with headroom.
    assert wait_page(page, "the budget table", "document.querySelectorAll('#budget-rows tr').length === 9")
    # The rows are re-rendered on every heartbeat: read them in one script.
    rows = page.execute_script(
        "return [...document.querySelectorAll('#budget-rows tr')].map(r => ({"
        "  cls: r.dataset.class, text: r.innerText,"
        "  max: r.querySelector('meter') && r.querySelector('meter').getAttribute('max')}))")
    assert [r["cls"] for r in rows] == ["ecs-service-read", "ecs-cluster-resource-read", "ecs-read",
                                        "ecs-write", "ec2-read", "ec2-write", "elbv2-read", "elbv2-write",
                                        "autoscaling-read"]
    elb_read = next(r for r in rows if r["cls"] == "elbv2-read")
    assert elb_read["max"] == "20"
    assert "5/s" in elb_read["text"]
    screenshot(page, "1-in-sync")
    screenshot(page, "1-in-sync-full", full=True)
    assert severe_console_messages(page) == []


def test_2_injected_drift_shows_up_live_and_is_corrected(stack, page):
    # Marks this page load: a reload would lose it.
    page.execute_script(
        "window.__sameLoad = true; window.__states = [];"
        "const unit = arguments[0];"
        "new MutationObserver(() => {"
        "  const c = document.querySelector(`article.unit[data-unit='${unit}']`);"
        "  const s = c && c.dataset.state;"
        "  if (s && window.__states[window.__states.length - 1] !== s) window.__states.push(s);"
        "}).observe(document.getElementById('units'),"
        "  {subtree: true, childList: true, attributes: true, attributeFilter: ['data-state']});",
        DRIFTED_UNIT)
    events_for_unit = f"#timeline li[data-unit='{DRIFTED_UNIT}']"
    before = len(page.find_elements(By.CSS_SELECTOR, events_for_unit))

    injected = time.monotonic()
    stack.awsctl("authorize-ingress", "LoadBalancerGroup", "tcp", "22", "22", "--cidr", "0.0.0.0/0")
    wait_page(page, f"{DRIFTED_UNIT} to leave in-sync",
              "window.__states.some(s => s !== 'in-sync')")
    seen = time.monotonic() - injected
    screenshot(page, "2-drift-seen")
    wait_until(f"{DRIFTED_UNIT} back in sync with a new timeline event", lambda: (
        card_states(page).get(DRIFTED_UNIT) == "in-sync"
        and len(page.find_elements(By.CSS_SELECTOR, events_for_unit)) > before))
    corrected = time.monotonic() - injected
    print(f"\ndrift: on the page after {seen:.1f} s, corrected on the page after {corrected:.1f} s; "
          f"states seen: {page.execute_script('return window.__states')}")

    assert page.execute_script("return window.__sameLoad === true"), "the page was reloaded"
    states = page.execute_script("return window.__states")
    assert set(states) - {"in-sync"} <= {"drifted", "correcting"}, states
    card = page.find_element(By.CSS_SELECTOR, f"article.unit[data-unit='{DRIFTED_UNIT}']")
    assert "tcp 22" in card.find_element(By.CSS_SELECTOR, ".changes").text  # the last drift stays on the card
    kinds = {li.get_attribute("data-kind") for li in page.find_elements(By.CSS_SELECTOR, events_for_unit)}
    assert kinds & {"drift", "action"}, kinds
    assert not any(r.get("from") == 22 for r in stack.awsctl("show")["ingress_rules"]["LoadBalancerGroup"])
    screenshot(page, "2-drift-corrected")


def test_2c_a_console_change_is_corrected_on_its_event_and_the_page_says_who(stack, page):
    unit = "security-group/EC2InstanceWithLoadBalancer"
    opened = time.monotonic()
    stack.awsctl("authorize-ingress", "EC2InstanceWithLoadBalancer", "tcp", "2222", "2222",
                 "--cidr", "198.51.100.0/24", access_key=CONSOLE_KEY)
    wait_page(page, "the card naming who made the drift",
              "((c) => c && c.dataset.state === 'in-sync' && c.querySelector('.changed-by')"
              " && c.querySelector('.changed-by').textContent.includes(arguments[1]))"
              "(document.querySelector(`article.unit[data-unit='${arguments[0]}']`))", unit, CONSOLE_ARN)
    corrected = time.monotonic() - opened
    card = page.find_element(By.CSS_SELECTOR, f"article.unit[data-unit='{unit}']")
    assert "AuthorizeSecurityGroupIngress by " + CONSOLE_ARN + " from 203.0.113.7" in card.text
    # Corrected on the event's pass (resync is 5 minutes), then checked on
    # the re-read one consistency window later.
    checked = card.find_element(By.CSS_SELECTOR, ".checked").text
    assert "(on an event)" in checked or "(on a re-read)" in checked, checked
    wait_page(page, "the timeline entry naming who",
              "[...document.querySelectorAll(`#timeline li[data-unit='${arguments[0]}'] .tby`)]"
              ".some(t => t.textContent.includes(arguments[1]))", unit, CONSOLE_ARN)
    queue = page.find_element(By.CSS_SELECTOR, "#daemon [data-queue]")
    assert queue.get_attribute("data-queue") == "receiving" and "caused a pass" in queue.text
    print(f"\nconsole change corrected and attributed on the page after {corrected:.1f} s (resync 5 min)")
    screenshot(page, "2c-who-changed-it")


def click(driver: webdriver.Chrome, element) -> None:
    """Clicks like a person who scrolled it into view (below the sticky header)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def test_2b_the_operate_panel_needs_the_token_and_reconciles_now(stack, page):
    result = "document.getElementById('operate-result').textContent"
    buttons = "[...document.querySelectorAll('#operate button, .unit button.reconcile')]"
    assert page.execute_script(f"return {buttons}.length >= 2 && {buttons}.every(b => b.disabled)"), \
        "no token typed: every control button is disabled"

    # A wrong token: refused, and the field is emptied.
    field = page.find_element(By.ID, "token")
    field.send_keys("not-the-token-0123456789")
    click(page, page.find_element(By.ID, "reconcile-all"))
    wait_page(page, "the refusal", f"{result}.includes('refused (401)')")
    assert field.get_attribute("value") == ""
    assert page.execute_script(f"return {buttons}.every(b => b.disabled)")

    # The right one: a pass at once, answered with its result.
    passes = stack.status()["daemon"]["passes"]
    field.send_keys(stack.token)
    click(page, page.find_element(By.ID, "reconcile-all"))
    wait_page(page, "the pass's answer", f"{result}.includes('Reconcile everything: converged')")
    assert stack.status()["daemon"]["passes"] > passes
    # One card's button: only that resource.
    unit = "security-group/LoadBalancerGroup"
    # The cards are re-rendered on every status event: find and click in one script.
    page.execute_script(
        "const b = document.querySelector(`article.unit[data-unit='${arguments[0]}'] button.reconcile`);"
        "b.scrollIntoView({block: 'center'}); b.click();", unit)
    wait_page(page, "the card's answer", f"{result}.includes('Reconcile {unit}: converged')")
    click(page, page.find_element(By.ID, "confirm-held"))
    wait_page(page, "the confirm's answer", f"{result}.includes('Confirm held removals: accepted')")
    screenshot(page, "2b-operate")
    assert "the control API (from 127.0.0.1:" in stack.daemon_log()
    # The token was typed, never stored.
    assert page.execute_script("return localStorage.length + sessionStorage.length") == 0


def test_3_invalid_yaml_shows_its_position_and_the_fix_clears_it(stack, page):
    invalid = stack.seed_text.replace("cidr: 0.0.0.0/0", "cidr: 0.0.0.0/33", 1)
    line_no, line = next((i + 1, l) for i, l in enumerate(invalid.splitlines()) if "0.0.0.0/33" in l)
    position = f"{stack.config}:{line_no}:{line.index('0.0.0.0/33') + 1}"

    atomic_write(stack.config, invalid)
    wait_page(page, "the config error on the page",
              "!document.getElementById('config-error').hidden"
              " && document.getElementById('config-error-text').textContent.includes(arguments[0])",
              position)
    box = page.find_element(By.ID, "config-error")
    assert box.is_displayed()
    assert box.get_attribute("role") == "alert"
    assert page.find_element(By.CSS_SELECTOR, "#config-error-text .pos").text == position
    assert page.find_element(By.ID, "config-badge").is_displayed()
    assert page.execute_script("return window.__sameLoad === true"), "the page was reloaded"
    screenshot(page, "3-config-error")

    atomic_write(stack.config, stack.seed_text)
    wait_page(page, "the config error to disappear", "document.getElementById('config-error').hidden")
    assert not page.find_element(By.ID, "config-badge").is_displayed()
    assert stack.status()["config"]["error"] is None
    screenshot(page, "3-config-fixed")


def test_4_narrow_viewport_is_one_column(stack):
    driver = chrome(390, 844, mobile=True)
    try:
        driver.get(f"{stack.url}/")
        wait_until("the six resources on the phone layout", lambda: len(card_states(driver)) == 6)
        layout = driver.execute_script("""
            const cards = [...document.querySelectorAll('article.unit')].map(c => c.getBoundingClientRect());
            const timeline = document.querySelector('section.timeline').getBoundingClientRect();
            return {width: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
                    lefts: [...new Set(cards.map(r => Math.round(r.left)))],
                    lastCardBottom: Math.max(...cards.map(r => r.bottom)), timelineTop: timeline.top};
        """)
        assert layout["width"] == 390, layout
        assert layout["scrollWidth"] <= layout["width"], f"horizontal overflow: {layout}"
        assert len(layout["lefts"]) == 1, f"cards are not in one column: {layout}"
        assert layout["timelineTop"] >= layout["lastCardBottom"], f"timeline not below the cards: {layout}"
        screenshot(driver, "4-narrow")
        screenshot(driver, "4-narrow-full", full=True)
        assert severe_console_messages(driver) == []
    finally:
        close(driver)


def test_5_without_eventsource_the_page_polls(stack, page):
    added = page.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.EventSource;"})
    try:
        page.get(f"{stack.url}/")
        assert page.execute_script("return typeof EventSource") == "undefined"
        wait_page(page, "the polling badge", "document.getElementById('conn').dataset.conn === 'polling'")
        wait_until("the six resources in sync, polled",
                   lambda: card_states(page) == {u: "in-sync" for u in UNITS})
        assert "reconstructed" in page.find_element(By.ID, "timeline-note").text
    finally:
        page.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})


def test_6_the_page_says_when_the_daemon_is_gone(stack, page):
    page.get(f"{stack.url}/")
    wait_page(page, "the live connection badge", "document.getElementById('conn').dataset.conn === 'live'")
    started = time.monotonic()
    stop(stack.daemon, signal.SIGTERM, 10)
    took = time.monotonic() - started
    print(f"\ndaemon stopped {took:.2f} s after SIGTERM with the event stream open")
    assert stack.daemon.returncode == 0, stack.daemon_log()[-2000:]
    assert took < 5, "an open /api/v1/events stream held up the shutdown"
    wait_page(page, "the disconnected badge", "document.getElementById('conn').dataset.conn === 'disconnected'")
    assert page.find_element(By.ID, "conn").text.startswith("disconnected")
    screenshot(page, "6-disconnected")
