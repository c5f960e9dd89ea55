"""The operator dashboard in real headless Chromium, fed by a fake webcam playing rendered plates."""
from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.conftest import start_server, stop_server, wait_healthy, write_config
from training.synth import plate_video, write_y4m

pytestmark = pytest.mark.slow  # a real server and headless Chromium

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    scenes = plate_video(random.Random("dashboard-video"), 40, layout="one_row", step=1.5)
    path = tmp_path_factory.mktemp("video") / "plates.y4m"
    write_y4m(path, scenes)
    return path, scenes


@pytest.fixture(scope="module")
def browser(video):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video[0]}"])
        yield browser
        browser.close()


def field(tile, name: str) -> str:
    return tile.locator(f'[data-field="{name}"]').inner_text()


def wait_for(predicate, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(message)


GREEN_BOX_JS = """canvas => {
  const {width, height} = canvas;
  const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let n = 0, x1 = width, y1 = height, x2 = -1, y2 = -1;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const i = (y * width + x) * 4;
    if (data[i + 3] > 200 && data[i + 1] > 180 && data[i] < 80 && data[i + 2] < 80) {
      n++; x1 = Math.min(x1, x); y1 = Math.min(y1, y); x2 = Math.max(x2, x); y2 = Math.max(y2, y);
    }
  }
  return {n, box: [x1, y1, x2, y2], width, height, cw: canvas.clientWidth, ch: canvas.clientHeight};
}"""


def open_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 720}, permissions=["camera"])
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=30000)
    return page


def test_dashboard_streams_draws_watches_and_recovers(browser, video, tmp_path, artifacts):
    scenes = video[1]
    truth = scenes[0].plates[0].spec.text
    server = start_server(tmp_path)
    try:
        page = open_page(browser, server.url)
        tiles = page.locator(".camera-tile")
        assert tiles.count() == 6
        tile = page.locator('.camera-tile[data-camera-id="cam1"]')
        source = tile.locator('select[data-field="source"]')
        assert source.input_value() not in ("file", "watch")  # the first webcam is the default
        tile.locator('[data-action="start"]').click()

        wait_for(
            lambda: field(tile, "plate") == truth, 90, f"tile never showed {truth}: {field(tile, 'plate')!r}"
        )
        frames_before = int(field(tile, "frames"))
        wait_for(lambda: float(field(tile, "fps")) > 0, 20, "no results per second shown")
        wait_for(lambda: int(field(tile, "frames")) > frames_before, 20, "frames stopped counting up")
        assert field(tile, "status") == "connected"
        assert field(tile, "latency").endswith("ms") and int(field(tile, "detections")) > 0

        # green pixels on the overlay, where the plate is in the (letterboxed) video
        green = wait_for(
            lambda: (g := tile.locator('[data-field="overlay"]').evaluate(GREEN_BOX_JS))["n"] > 50 and g,
            20,
            "no green box on the overlay",
        )
        scale = min(green["cw"] / 640, green["ch"] / 480)
        ox, oy = (green["cw"] - 640 * scale) / 2, (green["ch"] - 480 * scale) / 2
        xs = [b for sc in scenes for b in (sc.plates[0].box[0], sc.plates[0].box[2])]
        ys = [b for sc in scenes for b in (sc.plates[0].box[1], sc.plates[0].box[3])]
        gx1, gy1, gx2, gy2 = green["box"]
        assert ox + min(xs) * scale - 25 <= (gx1 + gx2) / 2 <= ox + max(xs) * scale + 25
        assert oy + min(ys) * scale - 40 <= (gy1 + gy2) / 2 <= oy + max(ys) * scale + 25
        page.screenshot(path=str(artifacts / "dashboard.png"))

        # a second page watching the same camera sees the same plate
        watcher = open_page(browser, server.url)
        watch_tile = watcher.locator('.camera-tile[data-camera-id="cam1"]')
        watch_tile.locator('select[data-field="source"]').select_option("watch")
        watch_tile.locator('[data-action="start"]').click()
        wait_for(lambda: field(watch_tile, "plate") == truth, 60, "the watching page never saw the plate")
        watcher.screenshot(path=str(artifacts / "dashboard-watch.png"))

        # the server goes away: the tile says so; it comes back: the tile recovers
        port = int(server.url.rsplit(":", 1)[1])
        stop_server(server)
        wait_for(
            lambda: "reconnecting" in field(tile, "status"), 30, f"status stayed {field(tile, 'status')!r}"
        )
        server = start_server(tmp_path, port=port, wait=False)
        wait_healthy(server)
        wait_for(lambda: field(tile, "status") == "connected", 60, "tile did not reconnect")
        page.evaluate("document.querySelector('[data-camera-id=cam1] [data-field=plate]').textContent = ''")
        wait_for(lambda: field(tile, "plate") == truth, 60, "no results after the server came back")
        page.screenshot(path=str(artifacts / "dashboard-recovered.png"))
    finally:
        stop_server(server)


def test_dashboard_fits_a_phone_screen(browser, tmp_path, artifacts):
    server = start_server(tmp_path)
    try:
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.goto(server.url)
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator(".camera-tile").count() == 6
        page.screenshot(path=str(artifacts / "dashboard-phone.png"))
    finally:
        stop_server(server)


def test_tile_choices_survive_a_reload(browser, tmp_path):
    server = start_server(tmp_path)
    try:
        page = open_page(browser, server.url)
        tile = page.locator(".camera-tile").nth(1)
        tile.locator('[data-field="camera"]').fill("gate-north")
        tile.locator('[data-field="camera"]').dispatch_event("change")
        tile.locator('select[data-field="source"]').select_option("watch")
        page.reload()
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        tile = page.locator(".camera-tile").nth(1)
        assert tile.get_attribute("data-camera-id") == "gate-north"
        assert tile.locator('select[data-field="source"]').input_value() == "watch"
        first = page.locator(".camera-tile").nth(0).locator('select[data-field="source"]').input_value()
        assert first not in ("file", "watch")  # untouched tiles keep the first webcam
    finally:
        stop_server(server)


def test_with_a_token_the_dashboard_connects_and_reads_the_plate_log_once_given_it(browser, tmp_path):
    server = start_server(tmp_path, config=write_config(tmp_path, auth_token="s3cret"))
    try:
        page = open_page(browser, server.url)
        assert page.evaluate("fetch('/events').then((r) => r.status)") == 401
        wait_for(lambda: "error" in page.locator("#connection").text_content(), 20, "no refusal shown")
        page.locator("#token").fill("s3cret")
        wait_for(lambda: page.locator("#connection").text_content() == "connected", 30, "never connected")
        wait_for(lambda: page.evaluate("fetch('/events').then((r) => r.status)") == 200, 20,
                 "the dashboard got no session for the plate log")
    finally:
        stop_server(server)


def test_lists_and_sessions_pages_and_the_gate_decision_on_the_tile(browser, video, tmp_path, artifacts):
    truth = video[1][0].plates[0].spec.text
    gate = {"cameras": {"cam1": {"role": "entry", "allow": ["residents"], "on_match": ["emit"],
                                 "on_no_match": ["emit"]}}}
    server = start_server(tmp_path, config=write_config(tmp_path, gate=gate, auth_token="s3cret"))
    try:
        lists = open_page(browser, f"{server.url}/web/lists.html")
        wait_for(lambda: lists.locator("#login").is_visible(), 20, "the lists page asked for no token")
        lists.locator("#login input").fill("s3cret")
        lists.locator("#login button").click()
        wait_for(lambda: lists.locator("#login").is_hidden(), 20, "the token was not taken")

        lists.locator('#new-list [name="name"]').fill("residents")
        lists.locator('#new-list [name="description"]').fill("flats A and B")
        lists.locator("#new-list button").click()
        title = lists.locator("#list-title")
        wait_for(lambda: title.text_content() == "List residents: 0 plates", 20, "the new list is not shown")
        typed = truth.replace("-", "").replace(".", "").lower()  # as an operator may type it
        lists.locator('#add-plate [name="plate"]').fill(typed)
        lists.locator('#add-plate [name="label"]').fill("flat 12")
        lists.locator("#add-plate button").click()
        wait_for(lambda: lists.locator("#plates td.plate").all_text_contents() == [truth], 20,
                 "the added plate is not listed in its canonical form")
        csv_file = tmp_path / "visitors.csv"
        csv_file.write_text("plate,label,valid_from,valid_until\n29A-1234,visitor,2026-01-01,2026-12-31\n")
        lists.locator("#import").set_input_files(str(csv_file))
        wait_for(lambda: title.text_content() == "List residents: 2 plates", 20, "the CSV was not imported")
        exported = lists.evaluate("fetch(document.querySelector('#export').href).then((r) => r.text())")
        assert sorted(exported.splitlines()[1:]) == sorted(
            ["29A-1234,visitor,2026-01-01,2026-12-31", f"{truth},flat 12,,"])
        lists.locator('button[aria-label="Remove 29A-1234"]').click()
        wait_for(lambda: title.text_content() == "List residents: 1 plate", 20, "the plate was not removed")
        lists.locator('#add-plate [name="plate"]').fill("51")
        lists.locator("#add-plate button").click()
        wait_for(lambda: "expected a plate's text" in lists.locator("#status").text_content(), 20,
                 "no reason shown")
        assert lists.locator("#lists tbody td").all_text_contents() == ["residents", "flats A and B", "1"]
        lists.screenshot(path=str(artifacts / "dashboard-lists.png"))

        # the live page, same browser: the vehicle at cam1 is on the list, its tile says OPEN
        live = lists.context.new_page()
        live.goto(server.url)
        live.wait_for_selector("body[data-ready=true]", timeout=30000)
        tile = live.locator('.camera-tile[data-camera-id="cam1"]')
        tile.locator('[data-action="start"]').click()
        wait_for(lambda: field(tile, "gate").startswith(f"OPEN {truth} · residents"), 90,
                 f"the tile never showed OPEN: {field(tile, 'gate')!r}")
        wait_for(lambda: live.locator("#recent .decision").all_text_contents() == ["OPEN"], 20,
                 "the recent plates list shows no decision")
        live.screenshot(path=str(artifacts / "dashboard-gate.png"))

        sessions = lists.context.new_page()
        sessions.goto(f"{server.url}/web/sessions.html")
        sessions.wait_for_selector("body[data-ready=true]", timeout=30000)
        wait_for(lambda: truth in sessions.locator("#inside td.plate").all_text_contents(), 20,
                 "the vehicle is not shown inside")
        assert sessions.locator("#inside-count").text_content() == "(1)"
        wait_for(lambda: truth in sessions.locator("#today td.plate").all_text_contents(), 20,
                 "today's entries miss the vehicle")
        exported = sessions.evaluate("fetch(document.querySelector('#csv').href).then((r) => r.text())")
        assert f"{truth},open,,cam1" in exported
        sessions.screenshot(path=str(artifacts / "dashboard-sessions.png"))
    finally:
        stop_server(server)
