// Console single sign-on against a real OpenID Connect provider (the `oidc-provider` package,
// run in this process with its development login pages), driven in headless Chromium: the
// authorization-code flow with PKCE, roles from the `cognito:groups` claim, refusal of a user in
// no console group, and refusal of a callback that didn't start in this browser.
//
// Needs `cargo build -p server`, `scripts/build-site.sh` and `npm ci` here (as console.test.mjs).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import Provider from "oidc-provider";
import { chromium } from "playwright-core";

import { CHROMIUM_ARGS, requireFiles, shots, startServer, chromiumPath } from "./support.mjs";

const CLIENT_ID = "golden-path-console";

// Who the provider knows, and their groups (as Cognito puts them in the ID token).
const GROUPS = { ana: ["soc", "engineering"], root: ["admin"], mallory: ["engineering"] };

let server;
let providerServer;
let browser;
let dataDir;
let consoleUrl;

/** A port that was free a moment ago (the provider and console need theirs up front). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}


before(async () => {
  requireFiles([]);
  dataDir = mkdtempSync(path.join(tmpdir(), "gp-oidc-data-"));
  const [providerPort, consolePort] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${providerPort}`;
  const redirect = `http://127.0.0.1:${consolePort}/auth/oidc/callback`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        token_endpoint_auth_method: "none",
        redirect_uris: [redirect],
        grant_types: ["authorization_code"],
        response_types: ["code"],
      },
    ],
    // Claims in the ID token itself, as Cognito does for cognito:groups.
    conformIdTokenClaims: false,
    claims: {
      openid: ["sub"],
      email: ["email"],
      profile: ["preferred_username", "cognito:groups"],
    },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            preferred_username: id,
            email: `${id}@example.com`,
            "cognito:groups": GROUPS[id] ?? [],
          };
        },
      };
    },
  });
  await new Promise((resolve) => {
    providerServer = provider.listen(providerPort, "127.0.0.1", resolve);
  });

  server = await startServer(dataDir, {
    LEPTOS_SITE_ADDR: `127.0.0.1:${consolePort}`,
    GOLDEN_PATH_CONSOLE__OIDC__ISSUER: issuer,
    GOLDEN_PATH_CONSOLE__OIDC__CLIENT_ID: CLIENT_ID,
    GOLDEN_PATH_CONSOLE__OIDC__REDIRECT_URL: redirect,
  });
  consoleUrl = server.console;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: CHROMIUM_ARGS,
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((r) => (providerServer ? providerServer.close(r) : r()));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** Sign in as `login` at the provider's development pages, starting from the console. */
async function signInAs(page, login) {
  await page.goto(`${consoleUrl}/login`);
  await page.click('[data-testid="login-sso"]');
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', "any password");
  await page.click('button[type="submit"]');
  // The consent page (first sign-in of this user to this client).
  const consent = await page.waitForSelector('button:has-text("Continue")', { timeout: 10_000 }).catch(() => null);
  if (consent) await consent.click();
}

test("a user in the soc group signs in through the provider and gets the soc role", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signInAs(page, "ana");
  await page.waitForURL(`${consoleUrl}/`, { timeout: 15_000 });
  await page.screenshot({ path: path.join(shots, "oidc-signed-in.png"), fullPage: true });
  const who = await page.evaluate(async () => {
    const r = await fetch("/api/whoami", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" } });
    return { status: r.status, body: await r.json() };
  });
  assert.equal(who.status, 200, JSON.stringify(who));
  assert.deepEqual(who.body, { name: "sso.ana", role: "soc" });
  const cookies = await context.cookies(consoleUrl);
  const session = cookies.find((c) => c.name === "gp_session");
  assert.ok(session?.httpOnly, "the session cookie is HttpOnly");
  assert.equal(session.sameSite, "Strict");
  assert.ok(!cookies.some((c) => c.name === "gp_oidc_state" && c.value), "the state cookie is cleared");
  await context.close();
});

test("a user in no console group is refused and gets no session", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signInAs(page, "mallory");
  await page.waitForSelector("text=not in a console group", { timeout: 15_000 });
  await page.screenshot({ path: path.join(shots, "oidc-refused.png"), fullPage: true });
  const cookies = await context.cookies(consoleUrl);
  assert.ok(!cookies.some((c) => c.name === "gp_session" && c.value), "no session cookie");
  const res = await page.goto(`${consoleUrl}/`);
  assert.match(res.url(), /\/login$/);
  await context.close();
});

test("a callback that did not start in this browser is refused", async () => {
  const res = await fetch(`${consoleUrl}/auth/oidc/callback?code=stolen&state=not-yours`, { redirect: "manual" });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /expired or was already used/);
  assert.equal(res.headers.get("set-cookie")?.includes("gp_session=") ?? false, false);
});
