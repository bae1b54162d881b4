"""report.html: self-contained, complete, and rendered without errors in a real headless Chromium."""

import base64
import html.parser
import shutil
import time

import pytest
from synthetic_reconstruction import write_reconstruction, write_tiny_video

from motionrecon.export import export_all, report
from motionrecon.export.reconstruction import load_reconstruction


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(text):
    parser = _Tags()
    parser.feed(text)
    return parser.tags


@pytest.fixture(scope="module")
def recon_dir(tmp_path_factory):
    folder = write_reconstruction(tmp_path_factory.mktemp("recon"), videos=("overlay.mp4",))
    export_all(folder)  # bvh, glb, plots, report
    return folder


def test_page_is_self_contained(recon_dir):
    text = (recon_dir / "report.html").read_text()
    tags = _tags(text)
    images = [a["src"] for t, a in tags if t == "img"]
    assert len(images) == 5  # frames + 4 plots
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert all("src" not in a for t, a in tags if t == "script")  # inline scripts only
    for t, a in tags:
        for key in ("src", "href"):
            value = a.get(key, "")
            assert not value.startswith(("http:", "https:", "//")), (t, value)
    assert '<meta http-equiv="Content-Security-Policy"' in text and "default-src 'none'" in text


def test_page_content(recon_dir):
    recon = load_reconstruction(recon_dir)
    text = (recon_dir / "report.html").read_text()
    for key, value in recon.metrics.items():
        assert f'<td class="key">{key}</td>' in text
    assert "MPJPE-G (global joint error, mm)</th><td>41.2</td>" in text
    videos = [a for t, a in _tags(text) if t == "video"]
    assert len(videos) == 1 and videos[0]["src"].startswith("data:video/mp4;base64,")
    assert base64.b64decode(videos[0]["src"].split(",", 1)[1]) == (recon_dir / "overlay.mp4").read_bytes()
    links = {a["href"] for t, a in _tags(text) if t == "a"}
    assert {"motion.bvh", "motion.glb", "plots", "motion.npz"} <= links
    assert "<script>" in text and "synthetic &lt;test&gt;" in text  # the run's source, escaped


def test_large_videos_are_linked_not_inlined(tmp_path):
    folder = write_reconstruction(tmp_path / "r", n_frames=10)
    write_tiny_video(folder / "side.mp4", n_frames=30)
    recon = load_reconstruction(folder)
    text = report.build_report(recon, pngs={}, max_inline_video_bytes=100)
    videos = [a for t, a in _tags(text) if t == "video"]
    assert [v["src"] for v in videos] == ["side.mp4"]
    assert "MB, linked" in text


def test_report_without_metrics_or_run(tmp_path):
    folder = write_reconstruction(tmp_path / "r", n_frames=8)
    (folder / "metrics.json").unlink()
    (folder / "run.json").unlink()
    text = report.build_report(load_reconstruction(folder), pngs={})
    assert "No metrics.json in this folder." in text


# --- a real browser ----------------------------------------------------------------------------

def _chrome_paths():
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return browser, driver


def _driver():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium==4.50.0)")
    browser, driver_path = _chrome_paths()
    if not browser or not driver_path:
        pytest.skip("Chromium not found: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--allow-file-access-from-files", "--window-size=1200,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


_PAGE_STATE = """
const imgs = Array.from(document.images).map(i => [i.id || i.alt, i.complete, i.naturalWidth]);
const c = document.getElementById('viewer');
const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let ink = 0;
for (let i = 0; i < px.length; i += 4) { if (px[i] < 200 || px[i + 1] < 200 || px[i + 2] < 200) ink++; }
return {imgs: imgs, ink: ink, frame: c.getAttribute('data-drawn-frame'),
        rows: document.querySelectorAll('#metrics tbody tr').length};
"""


def test_renders_in_headless_chromium_without_errors(recon_dir):
    driver = _driver()
    try:
        driver.get((recon_dir / "report.html").resolve().as_uri())
        deadline = time.time() + 10
        state = driver.execute_script(_PAGE_STATE)
        while state["frame"] is None and time.time() < deadline:
            time.sleep(0.1)
            state = driver.execute_script(_PAGE_STATE)
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], severe
        assert len(state["imgs"]) == 5
        assert all(complete and width > 0 for _, complete, width in state["imgs"]), state["imgs"]
        assert state["rows"] == len(load_reconstruction(recon_dir).metrics)
        assert state["ink"] > 2000, "the motion viewer drew nothing"
        first = state["frame"]
        time.sleep(0.6)
        assert driver.execute_script(_PAGE_STATE)["frame"] != first, "the viewer does not play"

        # The same checks catch a broken page: an external image is blocked and reported.
        broken = recon_dir / "broken.html"
        broken.write_text((recon_dir / "report.html").read_text().replace(
            "<h2>Metrics</h2>", '<h2>Metrics</h2><img id="bad" alt="bad" src="https://example.invalid/x.png">'))
        driver.get(broken.as_uri())
        time.sleep(0.5)
        state = driver.execute_script(_PAGE_STATE)
        bad = [img for img in state["imgs"] if img[0] == "bad"]
        assert bad and bad[0][2] == 0
        assert any(e["level"] == "SEVERE" for e in driver.get_log("browser"))
    finally:
        driver.quit()


def test_a_report_made_before_its_folder_is_renamed_bears_the_output_s_name(tmp_path):
    # The commands write every export inside fileio.atomic_dir's hidden temporary folder, renamed when complete:
    # the page is titled after the folder the user opens, not the temporary one.
    from motionrecon.fileio import atomic_dir

    with atomic_dir(tmp_path / "two_people_hug") as staging:
        assert staging.name.startswith(".two_people_hug.partial-")
        report.write_report(staging / "report.html", load_reconstruction(write_reconstruction(staging)))
    text = (tmp_path / "two_people_hug" / "report.html").read_text()
    assert "<title>motionrecon report: two_people_hug</title>" in text and "partial" not in text
