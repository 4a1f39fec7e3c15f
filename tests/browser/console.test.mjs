// Console in headless Chromium, against the real `target/debug/server` binary.
//
// Needs, from the workspace root: `cargo build -p server` (and `cargo build -p gateway` for the
// optional traffic step), `scripts/build-site.sh`, and `npm ci` in this directory.
// Run: `cd tests/browser && npm test` (or `node --test console.test.mjs`).
// Env: GOLDEN_PATH_SERVER_BIN, GOLDEN_PATH_GATEWAY_BIN, CHROMIUM_PATH override the defaults.
// Screenshots go to target/screenshots/.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

import { consoleFixture, gatewayBin, shots } from "./support.mjs";

const fx = consoleFixture("console");

/** Best effort: send a few requests through the gateway so the chart has data. */
async function gatewayTraffic(count) {
  if (!existsSync(gatewayBin)) return 0;
  let token;
  try {
    const { stdout } = await promisify(execFile)(gatewayBin, ["token", "--sub", "browser-test"], {
      env: { ...process.env, GOLDEN_PATH_DATA_DIR: fx.dataDir },
    });
    token = stdout.trim();
  } catch {
    return 0;
  }
  let ok = 0;
  for (let i = 0; i < count; i++) {
    try {
      const res = await fetch(`${fx.gatewayUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        // Every other prompt carries an e-mail address, which the default guardrail redacts.
        body: JSON.stringify({
          model: "dev",
          messages: [{ role: "user", content: i % 2 ? `mail me at jane.doe${i}@example.com` : `hello ${i}` }],
        }),
      });
      await res.arrayBuffer();
      if (res.status === 200) ok++;
    } catch {
      // The gateway is not this test's subject.
    }
  }
  return ok;
}

test("without a session, / lands on the sign-in page", async () => {
  const page = await fx.newPage();
  const response = await page.goto(`${fx.consoleUrl}/`);
  assert.equal(new URL(page.url()).pathname, "/login");
  assert.equal(response.status(), 200);
  const headers = response.headers();
  assert.match(headers["content-security-policy"], /script-src 'self' 'nonce-[A-Za-z0-9_-]+' 'wasm-unsafe-eval'/);
  assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
  assert.equal(headers["x-frame-options"], "DENY");
  assert.equal(headers["x-content-type-options"], "nosniff");
  assert.equal(headers["referrer-policy"], "no-referrer");
  await page.waitForSelector("[data-testid=login-card][data-hydrated=true]");
  await page.screenshot({ path: path.join(shots, "console-login.png") });

  // A server function refuses callers without a session.
  const denied = await page.request.post(`${fx.consoleUrl}/api/overview`, { form: { range: "1h" } });
  assert.equal(denied.status(), 401);
  await page.close();
});

test("a wrong password gets one generic message", async () => {
  const page = await fx.newPage();
  await page.goto(`${fx.consoleUrl}/login`);
  await page.waitForSelector("[data-testid=login-card][data-hydrated=true]");
  await page.fill("#login-name", "admin");
  await page.fill("#login-password", "not-the-password");
  await page.click("[data-testid=login-submit]");
  const error = await page.waitForSelector("[data-testid=login-error]");
  assert.equal(await error.textContent(), "Invalid user name or password.");
  assert.equal(new URL(page.url()).pathname, "/login");
  await page.screenshot({ path: path.join(shots, "console-login-error.png") });
  await page.close();
});

test("signing in works before the wasm loads (plain form post)", async () => {
  const page = await fx.newPage();
  fx.unwatched.add(page); // the blocked module import fails on purpose
  await page.route(/\/pkg\/.*\.(js|wasm)$/, (route) => route.abort());
  await page.goto(`${fx.consoleUrl}/login`);
  await page.fill("#login-name", "admin");
  await page.fill("#login-password", fx.adminPassword);
  await Promise.all([page.waitForURL(`${fx.consoleUrl}/`), page.click("[data-testid=login-submit]")]);
  // Server-rendered overview, complete without JavaScript.
  await page.waitForSelector("[data-testid=requests-chart] svg");
  assert.equal(await page.getAttribute("[data-testid=range-control]", "data-hydrated"), null);
  // Sign out again, still without JavaScript.
  await Promise.all([page.waitForURL(`${fx.consoleUrl}/login`), page.click("[data-testid=logout]")]);
  await page.close();
  await fx.context.clearCookies();
});

test("sign in, see the chart, change the range after hydration without a reload", async () => {
  const served = await gatewayTraffic(4);
  const page = await fx.newPage();
  await page.goto(`${fx.consoleUrl}/login`);
  await page.waitForSelector("[data-testid=login-card][data-hydrated=true]");
  await page.fill("#login-name", "admin");
  await page.fill("#login-password", fx.adminPassword);
  await Promise.all([page.waitForURL(`${fx.consoleUrl}/`), page.click("[data-testid=login-submit]")]);

  const cookies = await fx.context.cookies(fx.consoleUrl);
  const session = cookies.find((c) => c.name === "gp_session");
  assert.ok(session, "session cookie set");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  assert.equal(session.path, "/");

  const chart = "[data-testid=requests-chart]";
  await page.waitForSelector(`${chart} svg`);
  const svgText = await page.textContent(`${chart} svg`);
  assert.match(svgText, /requests \/ min/);
  assert.match(svgText, /time \(UTC\)/);
  assert.equal(await page.textContent("[data-testid=current-user] .user-name"), "admin");
  const requests = Number((await page.textContent("[data-testid=stat-requests]")).replaceAll(",", ""));
  assert.ok(requests >= served, `overview shows ${requests} requests, the gateway answered ${served}`);
  // The rest of the overview: latency percentiles, tokens by feature, top users and policies.
  if (served > 0) {
    for (const p of ["p50", "p95", "p99"]) {
      assert.match(await page.textContent(`[data-testid=latency-${p}]`), /^[≤≥] [\d.]+ m?s$/);
    }
    const tokens = await page.textContent("[data-testid=tokens-chart] svg");
    assert.match(tokens, /tokens \(input \+ output\)/);
    assert.ok((await page.$$("[data-testid=top-users] tbody tr")).length >= 1);
  }
  assert.ok(await page.isVisible("[data-testid=top-policies]"));

  await page.waitForSelector("[data-testid=range-control][data-hydrated=true]");
  await page.screenshot({ path: path.join(shots, "console-overview.png"), fullPage: true });

  const before = {
    range: await page.getAttribute(chart, "data-range"),
    svg: await page.innerHTML(chart),
  };
  assert.equal(before.range, "1h");
  await page.evaluate(() => {
    window.__goldenPathNoReload = "still here";
  });

  const refetch = page.waitForResponse(
    (r) => r.url().endsWith("/api/overview") && r.request().method() === "POST",
  );
  await page.click("[data-testid=range-control] a[data-range='24h']");
  const response = await refetch;
  assert.equal(response.status(), 200);
  await page.waitForSelector(`${chart}[data-range='24h']`);

  assert.equal(await page.evaluate(() => window.__goldenPathNoReload), "still here", "no full page load");
  assert.equal(new URL(page.url()).searchParams.get("range"), "24h");
  assert.notEqual(await page.innerHTML(chart), before.svg, "the chart was redrawn");
  assert.equal(
    await page.getAttribute("[data-testid=range-control] a[data-range='24h']", "aria-current"),
    "true",
  );
  await page.screenshot({ path: path.join(shots, "console-overview-24h.png"), fullPage: true });

  // Sign out: the session is gone server-side too.
  await Promise.all([page.waitForURL(`${fx.consoleUrl}/login`), page.click("[data-testid=logout]")]);
  await page.goto(`${fx.consoleUrl}/`);
  assert.equal(new URL(page.url()).pathname, "/login");
  await page.close();
});

test("no CSP violations or uncaught errors in any page", () => {
  assert.deepEqual(fx.problems, []);
});
