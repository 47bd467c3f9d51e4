"""The service's web pages in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven by
Selenium against `grader serve` as a process. A student signs in with their token, uploads the sample with the tanh
bug through the file input, and the page reloads itself until it shows the tanh feedback; staff sign in and
download the gradebook, which has bob's row."""
import csv
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_service import ROOT, Server, users, zipped

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or next((p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
                                                if Path(p).exists()), None)
try:
    import selenium
except ImportError:  # pragma: no cover
    selenium = None

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None or DRIVER is None or selenium is None,
                                 reason="needs chromium, chromium-driver (apt) and selenium (pip)")]


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: CSP violations
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def sign_in(driver, url, token):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.delete_all_cookies()
    driver.get(url + "/")
    assert driver.current_url == url + "/signin"
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    # the next page, whenever a busy machine serves it (find_element alone does not wait for a navigation)
    WebDriverWait(driver, 60).until(expected_conditions.presence_of_element_located((By.ID, "signed-in")))


def test_a_student_uploads_in_the_browser_sees_the_tanh_feedback_and_staff_download_the_gradebook(tmp_path,
                                                                                                   browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    data = tmp_path / "data"
    tokens = users(data, None, ["bob", "alice"])
    staff = subprocess.run([sys.executable, "-m", "grader", "users", "add-staff", "--data", str(data), "ta"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    upload = tmp_path / "bob_tanh_bug.zip"
    upload.write_bytes(zipped("bob_tanh_bug"))
    server = Server(data, None, jobs=1)
    try:
        sign_in(browser, server.url, tokens["bob"])
        assert browser.find_element(By.ID, "signed-in").text == "bob"
        assert "6 of 6 submissions left" in browser.find_element(By.ID, "limit").text
        browser.find_element(By.ID, "file-micrograd").send_keys(str(upload))
        started = time.monotonic()
        browser.find_element(By.ID, "upload-micrograd").click()
        WebDriverWait(browser, 60).until(lambda d: d.current_url.startswith(server.url + "/submissions/"))
        WebDriverWait(browser, 90, poll_frequency=0.2).until(lambda d: "tanh backward is wrong" in d.page_source)
        print(f"feedback shown {time.monotonic() - started:.1f} s after the upload")
        assert "95" in browser.find_element(By.ID, "summary").text
        browser.get(server.url + "/me")
        assert "5 of 6 submissions left" in browser.find_element(By.ID, "limit").text
        assert "bob_tanh_bug.zip" in browser.find_element(By.ID, "submission-1").text
        browser.find_element(By.ID, "sign-out").click()
        WebDriverWait(browser, 60).until(lambda d: d.current_url == server.url + "/signin")

        sign_in(browser, server.url, staff)
        assert browser.current_url == server.url + "/staff"
        browser.get(server.url + "/staff/assignments/micrograd")
        assert "micrograd · class dashboard" in browser.title and "bob" in browser.find_element(By.ID, "students").text
        browser.get(server.url + "/staff/students/bob")
        assert "bob_tanh_bug.zip" in browser.page_source
        browser.get(server.url + "/staff")
        browser.find_element(By.ID, "gradebook-micrograd").click()
        target = browser.downloads / "micrograd-gradebook.csv"
        WebDriverWait(browser, 30, poll_frequency=0.2).until(lambda _: target.exists())
        rows = {row["student"]: row for row in csv.DictReader(io.StringIO(target.read_text(encoding="utf-8")))}
        assert float(rows["bob"]["total"]) == 95.0 and rows["bob"]["status"] == "graded", rows["bob"]
        assert "alice" in rows  # on the roster, no submission
        refused = [entry["message"] for entry in browser.get_log("browser") if "Content Security Policy" in
                   entry["message"] or "Content-Security-Policy" in entry["message"]]
        assert refused == []  # every page works under its policy: forms post, the dashboard's script runs
    finally:
        server.stop()
