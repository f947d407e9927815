// MSAL Node (@azure/msal-node, unmodified) signs a user in against `entra-emulator
// --tls-self-signed`: getAuthCodeUrl with PKCE -> the emulator's sign-in form posted as a browser
// would -> acquireTokenByCode -> Graph /v1.0/me -> acquireTokenSilent after expiry (a refresh).
//
// Usage: node sign_in.mjs PATH_TO_ENTRA_EMULATOR_BINARY
// Prints '1 passed, 0 failed' and exits 0 when every step works.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const ACCESS_TOKEN_LIFETIME = 3; // seconds: short, so the silent call must refresh
const REDIRECT_URI = "http://localhost:8766/callback";
const USER = "adele@emulator.test";
const PASSWORD = "adele-password";

function check(condition, detail) {
  if (!condition) throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
}

/** Starts the emulator and resolves with what its banner says. */
function startEmulator(binary, caDir) {
  const emulator = spawn(binary, [
    "--bind", "127.0.0.1:0", "--tls-self-signed", caDir, "--redirect-uri", REDIRECT_URI,
    "--access-token-lifetime", String(ACCESS_TOKEN_LIFETIME),
  ], { stdio: ["ignore", "pipe", "inherit"] });
  const banner = {};
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the emulator did not print its banner")), 30000);
    createInterface({ input: emulator.stdout }).on("line", (line) => {
      const words = line.trim().split(/\s+/);
      if (line.startsWith("entra-emulator listening on")) banner.base = words.at(-1);
      else if (words[0] === "authority") banner.authority = words[1];
      else if (words[0] === "graph" && words[1] === "endpoint") banner.graph = words[2];
      else if (words[0] === "client" && words[1] === "id") banner.clientId = words[2];
      else if (words[0] === "client" && words[1] === "secret") banner.clientSecret = words[2];
      else if (line.startsWith("test users")) {
        clearTimeout(timer);
        resolve({ emulator, banner });
      }
    });
  });
}

function hiddenInput(html, name) {
  const match = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  return match ? match[1].replaceAll("&#x2f;", "/").replaceAll("&#43;", "+").replaceAll("&#61;", "=") : undefined;
}

/** What a person does in the browser: type the username and password, accept consent. */
async function signInInBrowser(authUri) {
  const page = await fetch(authUri, { redirect: "manual" });
  check(page.status === 200, `authorize answered ${page.status}`);
  const base = authUri.split("/oauth2/")[0];
  const login = await fetch(`${base}/login`, {
    method: "POST",
    redirect: "manual",
    body: new URLSearchParams({ ctx: hiddenInput(await page.text(), "ctx"), loginfmt: USER, passwd: PASSWORD }),
  });
  let answer = login;
  if (login.status === 200) {
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0];
    answer = await fetch(`${base}/consent`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie },
      body: new URLSearchParams({ ctx: hiddenInput(await login.text(), "ctx"), accept: "true" }),
    });
  }
  check(answer.status === 302, `sign-in answered ${answer.status}`);
  const location = new URL(answer.headers.get("location"));
  check(location.href.startsWith(REDIRECT_URI), location.href);
  return location.searchParams.get("code");
}

async function interop(banner) {
  const { ConfidentialClientApplication, CryptoProvider } = await import("@azure/msal-node");
  {
    const app = new ConfidentialClientApplication({
      auth: {
        clientId: banner.clientId,
        clientSecret: banner.clientSecret,
        authority: banner.authority,
        knownAuthorities: [new URL(banner.authority).host],
      },
    });
    const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
    const scopes = ["User.Read"];
    const authUri = await app.getAuthCodeUrl({
      scopes, redirectUri: REDIRECT_URI, codeChallenge: challenge, codeChallengeMethod: "S256",
    });
    check(authUri.includes("code_challenge="), "MSAL sends PKCE");
    const code = await signInInBrowser(authUri);

    const result = await app.acquireTokenByCode({ code, scopes, redirectUri: REDIRECT_URI, codeVerifier: verifier });
    check(result.accessToken, result);
    check(result.account.username === USER, result.account);
    const me = await fetch(`${banner.graph}/v1.0/me`, { headers: { authorization: `Bearer ${result.accessToken}` } });
    check(me.status === 200, `Graph answered ${me.status}`);
    check((await me.json()).displayName === "Adele Vance", "the profile");

    await new Promise((done) => setTimeout(done, (ACCESS_TOKEN_LIFETIME + 1) * 1000));
    const silent = await app.acquireTokenSilent({ account: result.account, scopes });
    check(silent.accessToken && silent.accessToken !== result.accessToken, "the expired token was refreshed");
    check(silent.fromCache === false, "from the identity provider, not the cache");
    const again = await fetch(`${banner.graph}/v1.0/me`, { headers: { authorization: `Bearer ${silent.accessToken}` } });
    check(again.status === 200, `Graph answered ${again.status} to the refreshed token`);
  }
}

if (process.env.ENTRA_EMULATOR_BANNER) {
  // The child: Node trusts the emulator's CA (NODE_EXTRA_CA_CERTS is read at start only).
  try {
    await interop(JSON.parse(process.env.ENTRA_EMULATOR_BANNER));
    console.log("msal-node interop: sign-in, Graph /me and silent refresh against entra-emulator --tls-self-signed");
    console.log("1 passed, 0 failed");
  } catch (failure) {
    console.log("msal-node interop failed:", failure);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
} else {
  // The parent: start the emulator (it writes its CA), then the child that trusts that CA.
  const caDir = mkdtempSync(join(tmpdir(), "entra-emulator-ca-"));
  const { emulator, banner } = await startEmulator(process.argv[2], caDir);
  const child = spawn(process.execPath, [process.argv[1]], {
    stdio: "inherit",
    env: {
      ...process.env,
      NODE_EXTRA_CA_CERTS: join(caDir, "entra-emulator-ca.pem"),
      ENTRA_EMULATOR_BANNER: JSON.stringify(banner),
    },
  });
  const code = await new Promise((done) => child.on("exit", (status) => done(status ?? 1)));
  emulator.kill();
  rmSync(caDir, { recursive: true, force: true });
  process.exit(code);
}
