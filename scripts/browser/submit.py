#!/usr/bin/python3
"""The user's side of the real-browser SHOW test (scripts/browser-test.sh).

Attaches Selenium (through chromedriver) to the headless Chromium that omadm-agent
launched, finds the tab showing the test server's SHOW page, checks that the page names
the device it was opened for (the client substituted [DevID] into the SHOW URL), presses
"Allow", and waits for the server's thank-you page. Prints what it saw as one JSON line;
exits non-zero, saying why, when any of it does not happen.
"""

import argparse
import json
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait


def fail(why):
    print(f"browser-test: {why}", file=sys.stderr)
    sys.exit(1)


def attach(debugger, deadline):
    """A driver on the running browser; it may still be starting."""
    options = webdriver.ChromeOptions()
    options.debugger_address = debugger
    last = None
    while time.monotonic() < deadline:
        try:
            return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        except WebDriverException as e:
            last = e
            time.sleep(0.5)
    fail(f"no browser to attach to at {debugger}: {last}")


def find_page(driver, prefix, deadline):
    while time.monotonic() < deadline:
        for handle in driver.window_handles:
            driver.switch_to.window(handle)
            if driver.current_url.startswith(prefix):
                return driver.current_url
        time.sleep(0.25)
    fail(f"no tab shows {prefix}; the browser has {[driver.current_url]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--debugger", required=True, help="host:port of the browser's DevTools")
    ap.add_argument("--page", required=True, help="the SHOW page's URL prefix")
    ap.add_argument("--device", required=True, help="the DevID the page must name")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    deadline = time.monotonic() + args.timeout

    driver = attach(args.debugger, deadline)
    url = find_page(driver, args.page, deadline)
    wait = WebDriverWait(driver, max(1.0, deadline - time.monotonic()))
    try:
        named = wait.until(ec.presence_of_element_located((By.ID, "device"))).text
    except TimeoutException:
        # An untrusted certificate shows the browser's own warning page instead.
        fail(f"the server's page did not load; the browser shows {driver.title!r}")
    if named != f"Device: {args.device}":
        fail(f"the page names {named!r}, not the device {args.device!r}")
    title = driver.title
    driver.find_element(By.ID, "allow").click()
    # The click navigates: until the answer page is in, the body found may belong to the
    # document being left, which Chromium reports as an error, not as a stale element.
    last = []

    def thanked(d):
        try:
            return "Thank you" in d.find_element(By.TAG_NAME, "body").text
        except WebDriverException as e:
            last[:] = [e]
            return False

    try:
        WebDriverWait(driver, max(1.0, deadline - time.monotonic())).until(thanked)
    except TimeoutException:
        fail(f"no thank-you page after Allow; last error: {last[0].msg if last else None}")
    print(json.dumps({"url": url, "title": title, "named": named, "answered": "yes"}))


if __name__ == "__main__":
    main()
