// MSAL Node (@azure/msal-node, unmodified) signs a user in against `entra-emulator
// --tls-self-signed`, twice: as a web app (ConfidentialClientApplication, with its secret) and as
// a desktop app (PublicClientApplication, no secret, a localhost redirect URI of the public-client
// platform). Each: getAuthCodeUrl with PKCE -> the emulator's sign-in form posted as a browser
// would -> acquireTokenByCode -> Graph /v1.0/me -> acquireTokenSilent after expiry (a refresh).
//
// Usage: node sign_in.mjs PATH_TO_ENTRA_EMULATOR_BINARY
// Prints '2 passed, 0 failed' and exits 0 when every step works.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { check, hiddenInput, startEmulator } from "../emulator.mjs";

const ACCESS_TOKEN_LIFETIME = 3; // seconds: short, so the silent call must refresh
const REDIRECT_URI = "http://localhost:8766/callback";
// A desktop app's redirect URI (the public-client platform): any port of localhost.
const DESKTOP_REDIRECT_URI = "http://localhost/desktop";
const DESKTOP_LISTENER = "http://localhost:8767/desktop";
const USER = "adele@emulator.test";
const PASSWORD = "adele-password";

/** What a person does in the browser: type the username and password, accept consent. */
async function signInInBrowser(authUri, redirectUri) {
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
  check(location.href.startsWith(redirectUri), location.href);
  return location.searchParams.get("code");
}

/** Sign-in by code, Graph, then a silent refresh once the access token has expired. */
async function signInCallGraphAndRefresh(app, banner, redirectUri, CryptoProvider) {
  const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
  const scopes = ["User.Read"];
  const authUri = await app.getAuthCodeUrl({
    scopes, redirectUri, codeChallenge: challenge, codeChallengeMethod: "S256",
  });
  check(authUri.includes("code_challenge="), "MSAL sends PKCE");
  const code = await signInInBrowser(authUri, redirectUri);

  const result = await app.acquireTokenByCode({ code, scopes, redirectUri, codeVerifier: verifier });
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

async function interop(banner) {
  const { ConfidentialClientApplication, PublicClientApplication, CryptoProvider } = await import("@azure/msal-node");
  const knownAuthorities = [new URL(banner.authority).host];
  const web = new ConfidentialClientApplication({
    auth: { clientId: banner.clientId, clientSecret: banner.clientSecret, authority: banner.authority, knownAuthorities },
  });
  await signInCallGraphAndRefresh(web, banner, REDIRECT_URI, CryptoProvider);
  console.log("msal-node interop: a web app (confidential client) signs in, calls Graph and refreshes");

  const desktop = new PublicClientApplication({ auth: { clientId: banner.clientId, authority: banner.authority, knownAuthorities } });
  await signInCallGraphAndRefresh(desktop, banner, DESKTOP_LISTENER, CryptoProvider);
  console.log("msal-node interop: a desktop app (public client, no secret) signs in, calls Graph and refreshes");
}

if (process.env.ENTRA_EMULATOR_BANNER) {
  // The child: Node trusts the emulator's CA (NODE_EXTRA_CA_CERTS is read at start only).
  try {
    await interop(JSON.parse(process.env.ENTRA_EMULATOR_BANNER));
    console.log("2 passed, 0 failed");
  } catch (failure) {
    console.log("msal-node interop failed:", failure);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
} else {
  // The parent: start the emulator (it writes its CA), then the child that trusts that CA.
  const caDir = mkdtempSync(join(tmpdir(), "entra-emulator-ca-"));
  const { emulator, banner } = await startEmulator(process.argv[2], [
    "--tls-self-signed", caDir, "--redirect-uri", REDIRECT_URI,
    "--public-client-redirect-uri", DESKTOP_REDIRECT_URI,
    "--access-token-lifetime", String(ACCESS_TOKEN_LIFETIME),
  ]);
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
