"""The explorer: its HTTP API against the generator it wraps, bad requests, closed streams, and a real browser."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from seqlab.config import Config
from seqlab.generate import generate
from seqlab.tasks import task_class
from seqlab.train.checkpoint import load_checkpoint, save_checkpoint

from helpers import words_text

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

CHROMIUM = "/usr/bin/chromium"
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained character LSTM (gates to show), saved as a checkpoint."""
    root = tmp_path_factory.mktemp("serve")
    data = root / "text.txt"
    data.write_text(words_text(800), encoding="utf-8")
    config = Config()
    config.data.path = str(data)
    config.model.hidden_size = 16
    task = task_class("lm")(config)
    task.load_data()
    torch.manual_seed(0)
    save_checkpoint(root / "run", config=config, model=task.build_model(), assets=task.assets())
    return root / "run"


def start_server(checkpoint, port="0"):
    """``seqlab serve`` in a process of its own; returns (process, base URL) once it listens."""
    process = subprocess.Popen([sys.executable, "-m", "seqlab.cli", "serve", str(checkpoint), "--port", port],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    line = process.stdout.readline()  # "seqlab explorer on http://127.0.0.1:PORT/ ..." once listening
    assert "http://127.0.0.1:" in line, process.stderr.read()
    return process, line.split()[3].rstrip("/")


@pytest.fixture(scope="module")
def server(checkpoint):
    process, url = start_server(checkpoint)
    yield url
    process.terminate()
    process.wait(timeout=30)


def read_events(response):
    """Server-sent events of a streamed response -> [(event name, data object)]."""
    events, name, data = [], "message", None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: "):])
        elif line == "" and data is not None:
            events.append((name, data))
            name, data = "message", None
    return events


def test_generate_streams_what_the_generator_gives_one_event_per_token_then_done(server, checkpoint):
    loaded = load_checkpoint(checkpoint)
    with httpx.stream("GET", f"{server}/api/generate", params={"prompt": "the ", "max_tokens": 12, "seed": 3,
                                                                "temperature": 0.9}, timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = read_events(response)
    assert events[-1][0] == "done" and all(name == "message" for name, _ in events[:-1])
    tokens = [data["token"] for _, data in events[:-1]]
    assert len(tokens) == 12 and all(0 < data["probability"] <= 1 for _, data in events[:-1])
    assert "".join(tokens) == "".join(generate(loaded.model, loaded.tokenizer, "the ", max_tokens=12, seed=3,
                                               temperature=0.9))
    # several samples: sample i is the lone sample with seed + i
    with httpx.stream("GET", f"{server}/api/generate", params={"prompt": "a", "max_tokens": 8, "seed": 5,
                                                                "temperature": 1.0, "num_samples": 3}, timeout=60) as response:
        events = read_events(response)
    for sample in range(3):
        text = "".join(data["token"] for name, data in events if name == "message" and data["sample"] == sample)
        assert text == "".join(generate(loaded.model, loaded.tokenizer, "a", max_tokens=8, seed=5 + sample,
                                        temperature=1.0))


@pytest.mark.parametrize("parameters, named", [
    ({"max_tokens": 0}, "max_tokens"), ({"max_tokens": "many"}, "max_tokens"), ({"temperature": -1}, "temperature"),
    ({"temperature": "nan"}, "temperature"),
    ({"top_p": 2}, "top-p"), ({"num_samples": 1000}, "num_samples"), ({"seed": -4}, "seed"),
])
def test_out_of_range_parameters_are_a_400_with_a_clear_message_and_the_server_carries_on(server, parameters, named):
    response = httpx.get(f"{server}/api/generate", params={"prompt": "a", **parameters}, timeout=60)
    assert response.status_code == 400 and named in response.json()["error"]
    assert httpx.get(f"{server}/api/info", timeout=60).json()["backbone"] == "lstm"


def test_inspect_gives_the_state_path_and_gates_for_the_text(server):
    answer = httpx.get(f"{server}/api/inspect", params={"text": "the cat sat"}, timeout=60).json()
    assert answer["tokens"] == list("the cat sat") and len(answer["trajectory"]) == 11
    gates = answer["gates"][0]  # layer 0: each gate's mean over units, per position
    assert set(gates) == {"input", "forget", "output"}
    assert all(len(values) == 11 and all(0 < value < 1 for value in values) for values in gates.values())
    assert answer["attention"] is None
    assert httpx.get(f"{server}/api/inspect", params={"text": "a"}, timeout=60).status_code == 400


def test_a_closed_stream_stops_its_generation_and_a_taken_port_is_one_line(server, checkpoint):
    with httpx.stream("GET", f"{server}/api/generate", params={"prompt": "a", "max_tokens": 5000}, timeout=60) as response:
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        assert httpx.get(f"{server}/api/status", timeout=60).json()["generating"] == 1
    deadline = time.monotonic() + 60
    while httpx.get(f"{server}/api/status", timeout=60).json()["generating"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert httpx.get(f"{server}/api/status", timeout=60).json()["generating"] == 0
    port = server.rsplit(":", 1)[1]
    result = subprocess.run([sys.executable, "-m", "seqlab.cli", "serve", str(checkpoint), "--port", port],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in result.stderr


def find_or_install_chromium():
    """Debian's chromium: found, or installed with apt (root only); None where neither works."""
    if shutil.which(CHROMIUM):
        return CHROMIUM
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, timeout=600)
        if not shutil.which(CHROMIUM):
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=300)
            subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, timeout=600)
    return CHROMIUM if shutil.which(CHROMIUM) else None


@pytest.mark.slow
def test_the_page_in_a_real_browser_streams_tokens_and_draws_the_state(server, tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = find_or_install_chromium()
    if executable is None:
        pytest.skip("no chromium: apt-get install chromium failed or needs root")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=BROWSER_FLAGS)
        try:
            page = browser.new_page()
            page.goto(server + "/")
            page.fill("#prompt", "the cat ")
            page.fill("#max_tokens", "40")
            page.fill("#num_samples", "2")
            page.click("#generate")
            page.wait_for_function("document.querySelectorAll('#sample-0 .token').length >= 5", timeout=60_000)
            page.wait_for_function("document.body.dataset.drawn === 'trajectory'", timeout=60_000)
            assert page.locator("#sample-1 .token").count() == 40
            assert page.locator("#sample-0").inner_text().startswith("the cat ")
            # the canvas holds a drawing: some pixels are not blank
            painted = page.evaluate("""() => { const c = document.getElementById('figure');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
            assert painted > 500
            page.click("#tabs button[data-view=gates]")
            page.wait_for_function("document.body.dataset.drawn === 'gates'", timeout=30_000)
            screenshot = tmp_path / "explorer.png"
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 10_000
        finally:
            browser.close()
