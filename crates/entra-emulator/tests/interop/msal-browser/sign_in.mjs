// MSAL Browser (@azure/msal-browser, unmodified) as a single-page app in headless Chromium signs
// a user in against `entra-emulator --tls-self-signed`: loginRedirect -> the emulator's sign-in
// and consent pages, typed into and clicked as a person would -> back on the SPA, which redeems
// the code cross-origin (PKCE, no secret) -> Graph /v1.0/me with the access token ->
// acquireTokenSilent through the refresh token -> Graph again.
//
// Chromium is driven through chromedriver's W3C WebDriver API with Node's own fetch (no driver
// library). Chromium accepts the emulator's self-signed certificate for this session only.
//
// Usage: node sign_in.mjs PATH_TO_ENTRA_EMULATOR_BINARY
// Prints '1 passed, 0 failed' and exits 0 when every step works.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { check, startEmulator } from "../emulator.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const MSAL_BUNDLE = join(HERE, "node_modules/@azure/msal-browser/lib/msal-browser.min.js");
const ACCESS_TOKEN_LIFETIME = 3; // seconds
const USER = "adele@emulator.test";
const PASSWORD = "adele-password";
const STEP_TIMEOUT_MS = 20000;
const ELEMENT = "element-6066-11e4-a52e-4f735466cecf"; // the W3C WebDriver element reference key

/** Serves the SPA page (with its settings filled in) and MSAL's browser bundle on loopback. */
function serveSpa(settings) {
  const page = () => readFileSync(join(HERE, "spa.html"), "utf8").replace("__CONFIG__", JSON.stringify(settings()));
  const server = createServer((request, response) => {
    const path = new URL(request.url, "http://localhost").pathname;
    if (path === "/") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page());
    } else if (path === "/msal-browser.min.js") {
      response.writeHead(200, { "content-type": "text/javascript" }).end(readFileSync(MSAL_BUNDLE));
    } else {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** Starts chromedriver on a port of its choosing and resolves with the process and its URL. */
function startChromedriver() {
  const driver = spawn("chromedriver", ["--port=0"], { stdio: ["ignore", "pipe", "ignore"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("chromedriver did not announce its port")), 20000);
    driver.on("error", reject);
    createInterface({ input: driver.stdout }).on("line", (line) => {
      const match = line.match(/started successfully on port (\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve({ driver, url: `http://127.0.0.1:${match[1]}` });
      }
    });
  });
}

/** A W3C WebDriver session: the few commands this journey needs. */
class Browser {
  static async open(driverUrl, profileDir) {
    // Debian's /usr/bin/chromium is a shell wrapper; WebDriver wants the real binary.
    const binary = existsSync("/usr/lib/chromium/chromium") ? "/usr/lib/chromium/chromium" : "/usr/bin/chromium";
    const capabilities = {
      alwaysMatch: {
        acceptInsecureCerts: true,
        "goog:chromeOptions": {
          binary,
          args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            `--user-data-dir=${profileDir}`],
        },
      },
    };
    const session = await webdriver(driverUrl, "POST", "/session", { capabilities });
    return new Browser(`${driverUrl}/session/${session.sessionId}`);
  }

  constructor(sessionUrl) { this.sessionUrl = sessionUrl; }

  command(method, path, body) { return webdriver(this.sessionUrl, method, path, body); }

  goto(url) { return this.command("POST", "/url", { url }); }

  /** Waits for an element matching `css` and returns its WebDriver reference. */
  async find(css) {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    for (;;) {
      try {
        return (await this.command("POST", "/element", { using: "css selector", value: css }))[ELEMENT];
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`${css} did not appear on ${await this.url()}: ${error.message}`);
        await new Promise((done) => setTimeout(done, 100));
      }
    }
  }

  async type(css, text) { await this.command("POST", `/element/${await this.find(css)}/value`, { text }); }

  async click(css) { await this.command("POST", `/element/${await this.find(css)}/click`, {}); }

  async text(css) { return this.command("GET", `/element/${await this.find(css)}/text`); }

  url() { return this.command("GET", "/url"); }

  close() { return this.command("DELETE", ""); }
}

async function webdriver(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS * 2),
  });
  const { value } = await response.json();
  if (!response.ok) throw new Error(`WebDriver ${method} ${path}: ${value?.error}: ${value?.message}`);
  return value;
}

/** The journey: a person opens the SPA, signs in, and the SPA calls Graph and refreshes. */
async function journey(browser, spaUrl) {
  await browser.goto(spaUrl);
  await browser.click("#sign-in");
  // The emulator's pages, as Entra's: the username, then the password, then consent.
  await browser.type("#i0116", USER);
  await browser.click("#idSIButton9");
  await browser.type("#i0118", PASSWORD);
  await browser.click("#idSIButton9");
  await browser.click("#idBtn_Accept");
  await browser.find("#outcome[data-done='true']");
  const outcome = JSON.parse(await browser.text("#outcome"));
  check(!outcome.error, outcome);
  check(outcome.username === USER, outcome);
  check(outcome.idTokenHasNonce, "MSAL Browser sent a nonce and got it back in the ID token");
  check(outcome.graph.status === 200 && outcome.graph.body.displayName === "Adele Vance", outcome.graph);
  check(outcome.refreshed, "acquireTokenSilent redeemed the refresh token cross-origin for a new access token");
  check(outcome.graphAfterRefresh === 200, outcome);
  check((await browser.url()).startsWith(spaUrl), "back on the SPA");
}

const caDir = mkdtempSync(join(tmpdir(), "entra-emulator-ca-"));
const profileDir = mkdtempSync(join(tmpdir(), "msal-browser-profile-"));
const settings = {};
const spa = await serveSpa(() => settings);
const spaUrl = `http://localhost:${spa.address().port}/`;
const { emulator, banner } = await startEmulator(process.argv[2], [
  "--tls-self-signed", caDir, "--spa-redirect-uri", spaUrl,
  "--access-token-lifetime", String(ACCESS_TOKEN_LIFETIME),
]);
Object.assign(settings, {
  authority: banner.authority, graph: banner.graph, clientId: banner.clientId, redirectUri: spaUrl, scopes: ["User.Read"],
});
const { driver, url: driverUrl } = await startChromedriver();
let status = 0;
let browser;
try {
  browser = await Browser.open(driverUrl, profileDir);
  await journey(browser, spaUrl);
  console.log("msal-browser interop: a SPA in headless Chromium signs in, calls Graph and refreshes silently");
  console.log("1 passed, 0 failed");
} catch (failure) {
  console.log("msal-browser interop failed:", failure);
  console.log("0 passed, 1 failed");
  status = 1;
} finally {
  await browser?.close().catch(() => {});
  driver.kill();
  emulator.kill();
  spa.close();
  rmSync(caDir, { recursive: true, force: true });
  rmSync(profileDir, { recursive: true, force: true });
}
process.exit(status);
