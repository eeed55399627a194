"""The console in a real browser: headless Chromium driven over WebDriver.

Starts `charter serve` on free loopback ports with a fresh SQLite database, seeds a small
world through the admin API (an API, two partners, grants in several states, a review
campaign, an offboarding), then signs in as the people who use the console and does what
they do: an approver approves a grant and attests a review with "reduce", a steward revokes
a grant and reads a partner's offboarding result, an auditor finds no action button, and a
form posted without its CSRF token is refused. Every page visited is saved as a screenshot.
"""

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

FAILURES = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        FAILURES.append(what)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Api:
    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None, token=None, expect=(200, 201)):
        r = requests.request(
            method,
            self.base + path,
            json=body,
            headers={"Authorization": "Bearer " + (token or self.token)},
            timeout=30,
        )
        if r.status_code not in expect:
            raise SystemExit(f"{method} {path}: {r.status_code} {r.text}")
        return r.json()

    def principal(self, name, roles):
        p = self.call("POST", "/v1/principals", {"name": name, "roles": roles})
        return p["id"], p["token"]


def seed(api):
    owner = api.principal("orders-team", ["api_owner"])
    steward = api.principal("partner-office", ["steward"])
    alice = api.principal("Alice Approver", ["approver"])
    auditor = api.principal("Audit Team", ["auditor"])
    orders = api.call(
        "POST",
        "/v1/apis",
        {
            "name": "orders",
            "audience": "https://api.example.com/orders",
            "upstream": "http://127.0.0.1:9/",
            "operations": [
                {"scope": "orders:read", "method": "GET", "path": "/orders/{id}",
                 "data_class": "confidential", "region": "eu"},
                {"scope": "orders:list", "method": "GET", "path": "/orders",
                 "data_class": "internal", "region": "eu"},
            ],
        },
        token=owner[1],
    )
    expires = (datetime.now(timezone.utc) + timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def partner(name):
        return api.call(
            "POST", "/v1/partners",
            {"name": name, "kind": "direct", "regions": ["eu"], "owners": [alice[0]]},
            token=steward[1],
        )["id"]

    def grant(partner_id, use_case):
        return api.call(
            "POST", "/v1/grants",
            {"partner": partner_id, "api": orders["id"], "use_case": use_case,
             "scopes": ["orders:read", "orders:list"], "data_class_ceiling": "confidential",
             "regions": ["eu"], "expires_at": expires},
            token=steward[1],
        )["id"]

    def approve(grant_id):
        api.call(
            "POST", f"/v1/grants/{grant_id}/approvals",
            {"decision": "approve", "justification": "Needed for deliveries", "ticket": "CHG-1"},
            token=alice[1],
        )

    acme = partner("Acme Logistics")
    pending = grant(acme, "Delivery status sync")
    to_revoke = grant(acme, "Invoice export")
    approve(to_revoke)
    api.call("POST", f"/v1/grants/{to_revoke}/credentials", {"kind": "client_secret"},
             token=steward[1])
    globex = partner("Globex Freight")
    reviewed = grant(globex, "Shipment tracking")
    approve(reviewed)
    review = api.call("POST", "/v1/reviews", {"partner": globex}, token=steward[1])
    initech = partner("Initech Parcel")
    gone = grant(initech, "Returns portal")
    approve(gone)
    api.call("POST", f"/v1/grants/{gone}/credentials", {"kind": "client_secret"}, token=steward[1])
    api.call("POST", f"/v1/partners/{initech}/offboard", {"reason": "Contract ended"},
             token=steward[1])
    return dict(steward=steward, alice=alice, auditor=auditor, acme=acme, globex=globex,
                initech=initech, pending=pending, to_revoke=to_revoke, reviewed=reviewed,
                review=review["id"])


class Browser:
    def __init__(self, base, shots):
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                  "--disable-gpu", "--window-size=1366,900"):
            opts.add_argument(a)
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        self.base, self.shots, self.n = base, shots, 0

    def open(self, path):
        self.driver.get(self.base + path)

    def shot(self, name):
        """Saves the whole page (the window grown to its height for the shot)."""
        self.n += 1
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1366, max(900, min(int(height), 6000)))
        self.driver.save_screenshot(str(self.shots / f"{self.n:02d}-{name}.png"))
        self.driver.set_window_size(1366, 900)

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text

    def buttons(self):
        return [b.text for b in self.driver.find_elements(By.TAG_NAME, "button")]

    def fill(self, field_id, value):
        el = self.driver.find_element(By.ID, field_id)
        el.clear()
        el.send_keys(value)

    def click(self, label, scope=None):
        """Clicks a form's button and waits until the next page has replaced this one."""
        root = scope or self.driver
        for b in root.find_elements(By.TAG_NAME, "button"):
            if b.text == label:
                page = self.driver.find_element(By.TAG_NAME, "html")
                b.click()
                WebDriverWait(self.driver, 15).until(ec.staleness_of(page))
                WebDriverWait(self.driver, 15).until(
                    lambda d: d.execute_script("return document.readyState") == "complete")
                return
        raise AssertionError(f"no button {label!r} among {self.buttons()}")

    def sign_in(self, token, who):
        self.driver.delete_all_cookies()
        self.open("/console/sign-in")
        self.shot(f"sign-in-{who}")
        self.fill("token", token)
        self.click("Sign in")
        check("My work" in self.driver.title, f"{who} signs in and lands on My work")

    def quit(self):
        self.driver.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--shots", required=True)
    args = ap.parse_args()
    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()

    port, gw_port = free_ports(2)
    base = f"http://127.0.0.1:{port}"
    admin = "console-admin-" + secrets.token_hex(16)
    data = tempfile.mkdtemp(prefix="charter-console.")
    log = open(os.path.join(data, "server.log"), "w")
    server = subprocess.Popen(
        [args.bin, "serve", "--data-dir", os.path.join(data, "db"),
         "--listen", f"127.0.0.1:{port}", "--gateway-listen", f"127.0.0.1:{gw_port}"],
        env={**os.environ, "CHARTER_ADMIN_TOKEN": admin}, stdout=log, stderr=log,
    )
    browser = None
    try:
        for _ in range(150):
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if server.poll() is not None:
                raise SystemExit("charter serve exited early")
            time.sleep(0.2)
        api = Api(base, admin)
        w = seed(api)
        browser = Browser(base, shots)
        run(browser, api, w, base)
    finally:
        if browser:
            browser.quit()
        server.terminate()
        server.wait(timeout=10)
        if FAILURES:
            print(open(os.path.join(data, "server.log")).read()[-3000:])
    print(f"console: {len(FAILURES)} failure(s); screenshots in {shots}")
    return 1 if FAILURES else 0


def run(b, api, w, base):
    d = b.driver
    # An approver approves a grant waiting on her.
    b.sign_in(w["alice"][1], "approver")
    b.shot("my-work-approver")
    check(w["pending"] in b.text(), "the pending grant waits on the approver")
    link = d.find_element(By.LINK_TEXT, w["pending"]).get_attribute("href")
    d.get(link)
    b.shot("grant-pending")
    check(b.buttons() == ["Sign out", "Approve", "Reject"], f"approve/reject offered: {b.buttons()}")
    b.fill("justification", "Deliveries need order status")
    b.fill("ticket", "CHG-42")
    b.click("Approve")
    b.shot("grant-approved")
    check("Approved." in b.text() and "active" in b.text(), "the grant page shows the approval")
    g = api.call("GET", f"/v1/grants/{w['pending']}")
    check(g["status"] == "active", "the API agrees: active")

    # The same approver attests the Globex review with "reduce", keeping orders:read.
    b.open("/console/reviews")
    b.shot("review-queue")
    item = d.find_element(By.ID, f"{w['review']}-itm_1")
    for box in item.find_elements(By.CSS_SELECTOR, "input[type=checkbox]"):
        if (box.get_attribute("value") == "orders:read") != box.is_selected():
            box.click()
    item.find_element(By.TAG_NAME, "textarea").send_keys("Listing is no longer needed")
    b.click("Reduce", item)
    b.shot("review-attested")
    check("Attestation recorded." in b.text(), "the queue confirms the attestation")
    g = api.call("GET", f"/v1/grants/{w['reviewed']}")
    check(g["scopes"] == ["orders:read"], f"the grant was reduced: {g['scopes']}")

    # A form posted without its CSRF token is refused, even with the session cookie.
    session = d.get_cookie("charter_session")["value"]
    r = requests.post(
        f"{base}/console/grants/{w['to_revoke']}/revoke",
        data={"reason": "forged"},
        headers={"Cookie": f"charter_session={session}"},
        allow_redirects=False, timeout=10,
    )
    check(r.status_code == 403 and "CSRF" in r.text, f"no CSRF token, no action ({r.status_code})")

    # A steward revokes a grant and reads a partner's offboarding result.
    b.sign_in(w["steward"][1], "steward")
    b.shot("my-work-steward")
    b.open(f"/console/grants/{w['to_revoke']}")
    b.shot("grant-active-steward")
    b.fill("reason", "Contract ended")
    b.click("Revoke")
    b.shot("grant-revoked")
    check("Revoked." in b.text(), "the grant page shows the revocation")
    check(api.call("GET", f"/v1/grants/{w['to_revoke']}")["status"] == "revoked", "the API agrees: revoked")
    b.open(f"/console/partners/{w['acme']}")
    b.shot("partner-acme")
    b.open(f"/console/partners/{w['initech']}")
    b.shot("partner-offboarded")
    text = b.text()
    check("Offboarding off_" in text and "passed" in text, "the offboarding result is on the partner page")
    b.open("/console/findings")
    b.shot("findings")
    b.open("/console/audit?partner=" + w["acme"])
    b.shot("audit-search")
    check("grant.revoke" in b.text(), "the audit search finds the revocation")
    b.open("/console/compliance")
    b.shot("compliance")

    # An auditor reads everything and sees no action button anywhere.
    b.sign_in(w["auditor"][1], "auditor")
    b.shot("my-work-auditor")
    for path in [f"/console/grants/{w['to_revoke']}", f"/console/grants/{w['reviewed']}",
                 f"/console/partners/{w['acme']}", "/console/reviews", "/console/findings"]:
        b.open(path)
        extra = [x for x in b.buttons() if x not in ("Sign out", "Search")]
        check(extra == [], f"auditor sees no action on {path}: {extra}")
    b.shot("grant-auditor")
    b.open("/console/grants/grt_doesnotexist00000000000000")
    b.shot("not-found")


if __name__ == "__main__":
    sys.exit(main())
