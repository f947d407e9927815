"""MSAL Python signs a user in against `entra-emulator --tls-self-signed`.

initiate_auth_code_flow -> the emulator's sign-in form posted by a scripted HTTP client ->
acquire_token_by_auth_code_flow -> Graph /v1.0/me -> acquire_token_silent after expiry (refresh);
then the app's own token: acquire_token_for_client for its API's /.default, with the application
permission granted on the command line in `roles`.

Usage: python msal_sign_in.py PATH_TO_ENTRA_EMULATOR_BINARY
Prints '1 passed, 0 failed' and exits 0 when every step works.
"""

import base64
import html.parser
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

ACCESS_TOKEN_LIFETIME = 3  # seconds: short, so the silent call must refresh
REDIRECT_URI = "http://localhost:8765/callback"
USER, PASSWORD = "adele@emulator.test", "adele-password"
CLIENT_ID = "3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41"  # the emulator's built-in registration
APP_PERMISSION = "Orders.Read.All"


def check(condition, detail):
    """An explicit check: unlike `assert`, it still runs under `python -O`."""
    if not condition:
        raise AssertionError(detail)


class HiddenInputs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs.get("name")] = attrs.get("value", "")


def hidden_inputs(page):
    parser = HiddenInputs()
    parser.feed(page)
    return parser.fields


def start_emulator(binary, ca_dir):
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1:0", "--tls-self-signed", ca_dir,
         "--redirect-uri", REDIRECT_URI,
         "--access-token-lifetime", str(ACCESS_TOKEN_LIFETIME),
         "--application-permission", f"api://{CLIENT_ID}/{APP_PERMISSION}"],
        stdout=subprocess.PIPE, text=True)
    banner = {}
    deadline = time.time() + 30
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        words = line.split()
        if line.startswith("entra-emulator listening on"):
            banner["base"] = words[-1]
        elif words[:1] == ["authority"]:
            banner["authority"] = words[1]
        elif words[:2] == ["graph", "endpoint"]:
            banner["graph"] = words[2]
        elif words[:2] == ["client", "id"]:
            banner["client_id"] = words[2]
        elif words[:2] == ["client", "secret"]:
            banner["client_secret"] = words[2]
        elif line.startswith("test users"):
            return process, banner
    process.kill()
    raise SystemExit("the emulator did not print its banner")


def sign_in_in_browser(session, auth_uri):
    """What a person does in the browser: type the username and password, accept consent."""
    page = session.get(auth_uri, allow_redirects=False)
    check(page.status_code == 200, page.status_code)
    form = hidden_inputs(page.text)
    login_url = auth_uri.split("/oauth2/")[0] + "/login"
    response = session.post(login_url, data={"ctx": form["ctx"], "loginfmt": USER, "passwd": PASSWORD},
                            allow_redirects=False)
    if response.status_code == 200 and "idBtn_Accept" in response.text:
        consent_url = auth_uri.split("/oauth2/")[0] + "/consent"
        response = session.post(consent_url, data={"ctx": hidden_inputs(response.text)["ctx"], "accept": "true"},
                                allow_redirects=False)
    check(response.status_code == 302, (response.status_code, response.text[:500]))
    location = response.headers["Location"]
    check(location.startswith(REDIRECT_URI), location)
    return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(location).query))


def main():
    import msal
    import requests

    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as ca_dir:
        process, banner = start_emulator(binary, ca_dir)
        try:
            ca_file = os.path.join(ca_dir, "entra-emulator-ca.pem")
            os.environ["REQUESTS_CA_BUNDLE"] = ca_file  # MSAL's own HTTP client is requests
            session = requests.Session()
            session.verify = ca_file

            app = msal.ConfidentialClientApplication(
                banner["client_id"], client_credential=banner["client_secret"],
                authority=banner["authority"], instance_discovery=False)
            flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI)
            check("code_challenge" in flow["auth_uri"], "MSAL sends PKCE")
            auth_response = sign_in_in_browser(session, flow["auth_uri"])

            result = app.acquire_token_by_auth_code_flow(flow, auth_response)
            check("access_token" in result, result)
            check(result["id_token_claims"]["preferred_username"] == USER, result["id_token_claims"])
            first_token = result["access_token"]

            me = session.get(banner["graph"] + "/v1.0/me", headers={"Authorization": "Bearer " + first_token})
            check(me.status_code == 200, me.text)
            check(me.json()["displayName"] == "Adele Vance", me.json())

            accounts = app.get_accounts()
            check(len(accounts) == 1 and accounts[0]["username"] == USER, accounts)
            time.sleep(ACCESS_TOKEN_LIFETIME + 1)
            silent = app.acquire_token_silent(["User.Read"], account=accounts[0])
            check(silent and "access_token" in silent, silent)
            check(silent["access_token"] != first_token, "the expired token was refreshed")
            check(silent.get("token_source") == "identity_provider", silent.get("token_source"))

            me = session.get(banner["graph"] + "/v1.0/me",
                             headers={"Authorization": "Bearer " + silent["access_token"]})
            check(me.status_code == 200, me.text)

            # The app's own token (client credentials), for its API.
            check(banner["client_id"] == CLIENT_ID, banner)
            own = app.acquire_token_for_client([f"api://{CLIENT_ID}/.default"])
            check("access_token" in own, own)
            check(own.get("token_source") == "identity_provider", own.get("token_source"))
            payload = own["access_token"].split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            check(claims["idtyp"] == "app" and claims["roles"] == [APP_PERMISSION], claims)
            check(claims["aud"] == f"api://{CLIENT_ID}" and claims["appid"] == CLIENT_ID, claims)
        finally:
            process.terminate()
            process.wait(timeout=10)
    print("msal interop: sign-in, Graph /me, silent refresh and client credentials against"
          " entra-emulator --tls-self-signed")
    print("1 passed, 0 failed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print("msal interop failed:", repr(failure))
        print("0 passed, 1 failed")
        sys.exit(1)
