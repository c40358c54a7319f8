"""The course site: `bash docs/build.sh` builds site/ (strict: a broken link or a docstring the
API reference cannot read fails the build), every internal link and picture of every page
points at something that is there, and a real headless browser (Debian's chromium with its
chromedriver) loads every page with every picture, the notebooks' mathematics typeset and
no console error. Set SCRATCHNET_SCREENSHOTS to a folder to keep screenshots of four pages."""
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SHOWN = {"index.html": ("guide", None), "notebooks/02_convolution_im2col/index.html": ("chapter-2", None),
         "notebooks/06_cats_vs_dogs/index.html": ("chapter-6", 2),     # scrolled to its receptive fields
         "notebooks/11_training_inspector/index.html": ("chapter-11", 0)}


@pytest.fixture(scope="module")
def site():
    for module in ("mkdocs", "material", "mkdocs_jupyter", "mkdocstrings"):
        pytest.importorskip(module, reason=f"{module} (the docs extra) is not installed")
    if shutil.which("npm") is None and not (ROOT / "build" / "mathjax-2.7.9" / "MathJax.js").exists():
        pytest.skip("npm (to fetch MathJax for the site) is not installed")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    built = subprocess.run(["bash", "docs/build.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return SITE


class Page(HTMLParser):
    """The links, pictures and element ids of one HTML page."""

    def __init__(self):
        super().__init__()
        self.links, self.pictures, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.pictures.append(attrs["src"])


def pages(site):
    return sorted(p for p in site.rglob("*.html") if p.name == "index.html" or p.name == "404.html")


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def target_of(page_path, url, site):
    """The file an internal URL of ``page_path`` names, or None for an external one."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("mailto:", "data:", "javascript:")):
        return None
    if not parts.path:
        return page_path
    folder = site if parts.path.startswith("/") else page_path.parent     # 404.html links from the root
    target = (folder / unquote(parts.path.lstrip("/"))).resolve()
    return target / "index.html" if target.is_dir() or parts.path.endswith("/") else target


def test_the_site_has_every_chapter_and_no_broken_internal_link_or_picture(site):
    found = {p.relative_to(site).as_posix() for p in pages(site)}
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert {f"notebooks/{name}/index.html" for name in chapters} <= found
    assert {"index.html", "ARCHITECTURE/index.html", "results/index.html", "api/layers/index.html"} <= found
    parsed, broken = {}, []
    for path in pages(site):
        page = parsed.setdefault(path, parse(path))
        for url in page.links + page.pictures:
            target = target_of(path, url, site)
            if target is None:
                continue
            if not target.exists():
                broken.append(f"{path.relative_to(site)}: {url}")
                continue
            fragment = urldefrag(url).fragment
            if fragment and target.suffix == ".html":
                ids = parsed.setdefault(target, parse(target)).ids
                if unquote(fragment) not in ids:
                    broken.append(f"{path.relative_to(site)}: {url} (no such anchor)")
    assert not broken, "\n".join(broken[:20])
    external = [url for path in pages(site) for url in parse(path).pictures if target_of(path, url, site) is None
                and not url.startswith("data:")]
    assert not external, f"pictures from another host: {external[:5]}"


@pytest.fixture(scope="module")
def browser(site):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (dev extra) is not installed")
    from selenium.webdriver.chrome.service import Service
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        driver.quit()
        server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (!window.MathJax || !window.MathJax.Hub) { done(-1); return; }
window.MathJax.Hub.Queue(() => done(document.querySelectorAll('.mjx-chtml').length));
"""


def test_a_real_browser_renders_every_page_with_its_pictures_and_mathematics(browser, site, tmp_path):
    driver, base = browser
    driver.set_script_timeout(60)
    shots = Path(os.environ.get("SCRATCHNET_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    problems = []
    for path in pages(site):
        name = path.relative_to(site).as_posix()
        if name == "404.html":
            continue
        driver.get(base + name.removesuffix("index.html"))
        typeset = driver.execute_async_script(WAIT_FOR_MATHJAX)
        if name.startswith("notebooks/01") and typeset < 10:
            problems.append(f"{name}: only {typeset} formulas typeset")
        unloaded = driver.execute_script(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        problems += [f"{name}: picture did not load: {src}" for src in unloaded]
        problems += [f"{name}: console: {entry['message']}" for entry in driver.get_log("browser")
                     if entry["level"] in ("SEVERE", "WARNING")]
        if name in SHOWN:
            label, figure = SHOWN[name]
            if figure is not None:      # one of the notebook's figures in the middle of the window
                driver.execute_script("document.querySelectorAll('img[src^=\"data:\"]')[arguments[0]]"
                                      ".scrollIntoView({block: 'center'})", figure)
            driver.save_screenshot(str(shots / f"{label}.png"))
    assert not problems, "\n".join(problems[:20])
    for label, _ in SHOWN.values():
        assert (shots / f"{label}.png").stat().st_size > 20_000, label
