// The SOC journey in headless Chromium, against the real `target/debug/server` binary: gateway
// traffic for a user, "every prompt by user X" on /insights (with and without the wasm), CSV
// export, a syntax error, a binned chart, opening a vault record with a reason on /investigate,
// the access in the audit store, and a viewer refused both pages.
//
// Needs, from the workspace root: `cargo build -p server` (and `cargo build -p gateway` for the
// optional traffic step), `scripts/build-site.sh`, and `npm ci` in this directory.
// Run: `cd tests/browser && node --test soc.test.mjs`.
// Env: GOLDEN_PATH_SERVER_BIN, GOLDEN_PATH_GATEWAY_BIN, CHROMIUM_PATH override the defaults.
// Screenshots go to target/screenshots/.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

import { CHROMIUM_ARGS, chromiumPath, consoleFixture, gatewayBin, shots } from "./support.mjs";

const fx = consoleFixture("soc", [
  [gatewayBin, "cargo build -p gateway"],
  ["/usr/bin/sqlite3", "apt-get install sqlite3"],
]);


const TARGET = "soc-target@example.com";
const REASON = "ticket SEC-4242: suspected data leak";

/** Run SQL on a database in the data dir (the test's own temp dir). */
function sql(db, statement) {
  return execFileSync("/usr/bin/sqlite3", ["-cmd", ".timeout 5000", path.join(fx.dataDir, db), statement], {
    encoding: "utf8",
  }).trim();
}

function setRole(role) {
  sql("console.db", `UPDATE users SET role = '${role}' WHERE name = 'admin'`);
}

/** Requests through the gateway as `sub`; returns the request ids. */
async function traffic(sub, prompts) {
  const { stdout } = await promisify(execFile)(gatewayBin, ["token", "--sub", sub], {
    env: { ...process.env, GOLDEN_PATH_DATA_DIR: fx.dataDir },
  });
  const token = stdout.trim();
  const ids = [];
  for (const content of prompts) {
    const res = await fetch(`${fx.gatewayUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "dev", messages: [{ role: "user", content }] }),
    });
    await res.arrayBuffer();
    assert.equal(res.status, 200);
    ids.push(res.headers.get("x-request-id"));
  }
  return ids;
}

async function signIn(page) {
  await page.goto(`${fx.consoleUrl}/login`);
  await page.waitForSelector("[data-testid=login-card][data-hydrated=true]");
  await page.fill("#login-name", "admin");
  await page.fill("#login-password", fx.adminPassword);
  await Promise.all([page.waitForURL(`${fx.consoleUrl}/`), page.click("[data-testid=login-submit]")]);
}

let requestIds = [];

test("a SOC analyst runs 'every prompt by user', exports CSV, charts bins and sees syntax errors", async () => {
  requestIds = await traffic(TARGET, [
    "Reply to jane.doe@example.com about her order",
    "hello from the SOC test",
    "=cmd|' /C calc'!A0 is not a formula here",
  ]);
  await traffic("someone-else@example.com", ["not this one"]);
  const page = await fx.newPage();
  await signIn(page);
  setRole("soc");

  await page.goto(`${fx.consoleUrl}/insights`);
  await page.waitForSelector("main[data-hydrated=true]");
  assert.ok(await page.isVisible("[data-testid=nav-insights]"));
  await page.fill("[data-testid=preset-user]", TARGET);
  await page.click("[data-testid=preset-prompts-by-user]");
  await page.waitForSelector("[data-testid=results][data-status=Complete]");
  const url = new URL(page.url());
  assert.equal(url.pathname, "/insights");
  const id = url.searchParams.get("id");
  assert.match(id, /^[0-9a-f]{32}$/);
  assert.match(url.searchParams.get("query"), /filter userSub = "soc-target@example.com"/);
  const rows = await page.$$eval("[data-testid=results-table] tbody tr", (trs) => trs.map((tr) => tr.textContent));
  assert.equal(rows.length, 3, rows.join("\n"));
  for (const rid of requestIds) assert.ok(rows.some((r) => r.includes(rid)), `${rid} listed`);
  assert.ok(!rows.some((r) => r.includes("someone-else")));

  // Client-side sorting by a column (after hydration: no page load).
  const header = await page.$$eval("[data-testid=results-table] thead th", (ths) => ths.map((t) => t.textContent.trim()));
  const tsCol = header.findIndex((h) => h.startsWith("@timestamp"));
  await page.evaluate(() => (window.__sameDocument = true));
  await page.click(`[data-testid=results-table] thead th:nth-child(${tsCol + 1}) a`);
  await page.waitForSelector(`[data-testid=results-table] thead th[aria-sort=ascending]`);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "sorting reloads nothing");
  const times = await page.$$eval(
    `[data-testid=results-table] tbody td:nth-child(${tsCol + 1})`,
    (tds) => tds.map((td) => td.textContent),
  );
  assert.deepEqual(times, [...times].sort());
  await page.screenshot({ path: path.join(shots, "soc-insights-results.png"), fullPage: true });

  // CSV export: text/csv, every row, formula cells neutralised.
  const csv = await page.request.get(`${fx.consoleUrl}/api/insights_csv?id=${id}`);
  assert.equal(csv.status(), 200);
  assert.match(csv.headers()["content-type"], /^text\/csv/);
  assert.match(csv.headers()["content-disposition"], /attachment; filename="insights-/);
  const text = await csv.text();
  assert.match(text.split("\r\n")[0], /requestId/);
  assert.equal(text.trim().split("\r\n").length, 4);

  // Someone else's query id is not found; a forged start without a session is refused.
  const other = await page.request.get(`${fx.consoleUrl}/api/insights_csv?id=00000000000000000000000000000000`);
  assert.notEqual(other.status(), 200);

  // A syntax error points at its line and column.
  await page.goto(`${fx.consoleUrl}/insights?query=${encodeURIComponent("fields requestId\n| filter (")}&range=1h`);
  const err = await page.waitForSelector("[data-testid=syntax-error]");
  assert.match(await err.textContent(), /Line 2, column 11/);
  await page.screenshot({ path: path.join(shots, "soc-insights-syntax-error.png"), fullPage: true });

  // stats … by bin() draws a chart; typed in the editor and run through the hydrated form.
  await page.goto(`${fx.consoleUrl}/insights`);
  await page.waitForSelector("main[data-hydrated=true]");
  await page.fill("[data-testid=query-input]", "stats count(*) as requests by bin(1m), userSub");
  // Coloured as typed, with the parser's words.
  const hl = "[data-testid=query-highlight]";
  await page.waitForSelector(`${hl} .tok-function`);
  const tokens = async (cls) => page.$$eval(`${hl} .${cls}`, (els) => els.map((e) => e.textContent));
  assert.deepEqual(await tokens("tok-command"), ["stats"]);
  assert.deepEqual(await tokens("tok-function"), ["count", "bin"]);
  assert.deepEqual(await tokens("tok-keyword"), ["as", "by"]);
  assert.deepEqual(await tokens("tok-number"), ["1m"]);
  assert.equal(await page.textContent(hl), "stats count(*) as requests by bin(1m), userSub\n");
  await page.selectOption("[data-testid=range-select]", "24h");
  await page.click("[data-testid=run-query]");
  await page.waitForSelector("[data-testid=results][data-status=Complete]");
  await page.waitForSelector("[data-testid=insights-chart] svg");
  await page.screenshot({ path: path.join(shots, "soc-insights-chart.png"), fullPage: true });
  await page.close();
});

test("the basic run works without the wasm (form post and redirect)", async () => {
  const page = await fx.newPage();
  fx.unwatched.add(page); // the blocked module import fails on purpose
  await page.route(/\/pkg\/.*\.(js|wasm)$/, (route) => route.abort());
  // The server colours the query before any wasm runs.
  const typed = 'fields requestId # who\n| filter status >= 400 and feature like /sup/';
  await page.goto(`${fx.consoleUrl}/insights?query=${encodeURIComponent(typed)}&range=1h`);
  const hl = "[data-testid=query-highlight]";
  const tokens = async (cls) => page.$$eval(`${hl} .${cls}`, (els) => els.map((e) => e.textContent));
  assert.deepEqual(await tokens("tok-command"), ["fields", "filter"]);
  assert.deepEqual(await tokens("tok-comment"), ["# who"]);
  assert.deepEqual(await tokens("tok-keyword"), ["and", "like"]);
  assert.deepEqual(await tokens("tok-regex"), ["/sup/"]);
  assert.deepEqual(await tokens("tok-number"), ["400"]);
  await page.screenshot({ path: path.join(shots, "soc-insights-editor-nowasm.png"), fullPage: true });
  await page.goto(`${fx.consoleUrl}/insights`);
  await page.fill("[data-testid=query-input]", `fields requestId | filter userSub = "${TARGET}"`);
  await Promise.all([page.waitForURL(/\/insights\?.*id=/), page.click("[data-testid=run-query]")]);
  await page.waitForSelector("[data-testid=results][data-status=Complete]");
  assert.equal(await page.$$eval("[data-testid=results-table] tbody tr", (trs) => trs.length), 3);
  assert.equal(await page.getAttribute("main", "data-hydrated"), null);
  await page.close();
});

test("opening a record asks for a reason, records the access first and shows the prompt", async () => {
  const page = await fx.newPage();
  await page.goto(`${fx.consoleUrl}/investigate?user=${encodeURIComponent(TARGET)}`);
  await page.waitForSelector("main[data-hydrated=true]");
  await page.waitForSelector("[data-testid=activity-chart] svg");
  assert.equal(await page.$$eval("[data-testid=timeline] tbody tr", (trs) => trs.length), 3);
  await page.screenshot({ path: path.join(shots, "soc-investigate-timeline.png"), fullPage: true });

  const rid = requestIds[0];
  await page.click(`[data-testid=open-link][data-request="${rid}"]`);
  await page.waitForSelector("[data-testid=reason-form]");
  assert.equal(new URL(page.url()).searchParams.get("open"), rid);

  // A too-short reason is refused by the server (the browser's minlength bypassed).
  await page.$eval("[data-testid=reason-input]", (el) => el.removeAttribute("minlength"));
  await page.fill("[data-testid=reason-input]", "x");
  await page.click("[data-testid=open-submit]");
  await page.waitForSelector("[data-testid=open-error]");
  assert.equal(sql("audit.db", `SELECT COUNT(*) FROM access_events WHERE request_id = '${rid}'`), "0");

  await page.fill("[data-testid=reason-input]", REASON);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().includes("/api/open_record")),
    page.click("[data-testid=open-submit]"),
  ]);
  assert.equal(response.status(), 200);
  assert.equal(response.headers()["cache-control"], "no-store");
  await page.waitForSelector("[data-testid=record]");
  const raw = await page.textContent("[data-testid=raw-prompt]");
  assert.match(raw, /Reply to jane\.doe@example\.com about her order/);
  assert.equal(await page.textContent("[data-testid=raw-prompt] mark.redaction"), "jane.doe@example.com");
  assert.match(await page.textContent("[data-testid=model-input]"), /\{EMAIL\}/);
  const accesses = await page.textContent("[data-testid=accesses]");
  assert.match(accesses, /admin/);
  assert.ok(accesses.includes(REASON));
  await page.screenshot({ path: path.join(shots, "soc-investigate-record.png"), fullPage: true });

  // The access is in the audit store (AuditStore::accesses reads this table), with who, why
  // and from where.
  const row = sql("audit.db", `SELECT actor, reason, origin FROM access_events WHERE request_id = '${rid}'`);
  assert.equal(row, `admin|${REASON}|console 127.0.0.1`);

  // And on the audit page.
  const auditPage = await fx.newPage();
  const audit = await auditPage.goto(`${fx.consoleUrl}/audit`);
  assert.equal(audit.status(), 200);
  await auditPage.waitForLoadState("networkidle");
  assert.ok((await auditPage.textContent("body")).includes(REASON), "the opening is on /audit");
  await auditPage.screenshot({ path: path.join(shots, "soc-audit-access.png"), fullPage: true });
  await auditPage.close();
  await page.close();
});

test("without JavaScript, opening a record is a plain form post: reason required, access first, record shown", async () => {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", ...CHROMIUM_ARGS],
  });
  try {
    const ctx = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 860 } });
    const page = await ctx.newPage();
    await page.goto(`${fx.consoleUrl}/login`);
    await page.fill("#login-name", "admin");
    await page.fill("#login-password", fx.adminPassword);
    await Promise.all([page.waitForURL(`${fx.consoleUrl}/`), page.click("[data-testid=login-submit]")]);

    const rid = requestIds[1];
    const opened = () => Number(sql("audit.db", `SELECT COUNT(*) FROM access_events WHERE request_id = '${rid}'`));
    const pageUrl = `${fx.consoleUrl}/investigate?user=${encodeURIComponent(TARGET)}&range=24h&open=${rid}`;
    await page.goto(pageUrl);
    await page.waitForSelector("[data-testid=reason-form]");
    assert.equal(await page.getAttribute("main", "data-hydrated"), null, "no script ran");

    // The server refuses a too-short reason on this path too (the browser's checks bypassed).
    const refused = await page.request.post(`${fx.consoleUrl}/api/open_record`, {
      form: { request_id: rid, reason: "x", back: new URL(pageUrl).pathname + new URL(pageUrl).search },
      headers: { accept: "text/html", origin: fx.consoleUrl },
      maxRedirects: 0,
    });
    assert.equal(refused.status(), 302);
    const shown = refused.headers()["location"];
    assert.match(shown, /^\/investigate\?.*&open=.*&shown=[0-9a-f]{32}$/);
    await page.goto(`${fx.consoleUrl}${shown}`);
    assert.match(await page.textContent("[data-testid=open-error]"), /say why you open this record/);
    assert.equal(opened(), 0);

    // A real reason: the post redirects back, the access is recorded, the record is shown.
    await page.fill("[data-testid=reason-input]", "ticket SEC-4243: checked without scripts");
    await Promise.all([page.waitForURL(/shown=[0-9a-f]{32}/), page.click("[data-testid=open-submit]")]);
    await page.waitForSelector("[data-testid=record]");
    assert.match(await page.textContent("[data-testid=raw-prompt]"), /hello from the SOC test/);
    assert.match(await page.textContent("[data-testid=accesses]"), /checked without scripts/);
    assert.equal(opened(), 1);
    await page.screenshot({ path: path.join(shots, "soc-investigate-record-nojs.png"), fullPage: true });

    // The hand-off is one-time: the same URL again shows the form, not the record.
    await page.reload();
    await page.waitForSelector("[data-testid=reason-form]");
    assert.equal(await page.$("[data-testid=record]"), null);
    await ctx.close();
  } finally {
    await browser.close();
  }
});

test("a viewer is refused /insights, /investigate and the SOC server functions", async () => {
  const openings = sql("audit.db", `SELECT COUNT(*) FROM access_events WHERE request_id = '${requestIds[0]}'`);
  setRole("viewer");
  const page = await fx.newPage();
  for (const p of ["/insights", `/investigate?user=${encodeURIComponent(TARGET)}`]) {
    const res = await page.goto(`${fx.consoleUrl}${p}`);
    assert.equal(res.status(), 403, p);
    const text = await page.textContent("main");
    assert.match(text, /Your role does not allow this\./);
    assert.ok(!text.includes(requestIds[0]), "no data leaks to a viewer");
  }
  await page.waitForSelector("main[data-hydrated=true]");
  assert.equal(await page.isVisible("[data-testid=nav-insights]"), false);
  await page.screenshot({ path: path.join(shots, "soc-viewer-refused.png"), fullPage: true });
  for (const [fn, form] of [
    ["insights_start", { query: "fields a", range: "1h" }],
    ["open_record", { request_id: requestIds[0], reason: REASON }],
    ["investigate", { user: TARGET, range: "24h" }],
    ["insights_page", { query: "", range: "1h", start: "", end: "", id: "", error: "" }],
  ]) {
    const res = await page.request.post(`${fx.consoleUrl}/api/${fn}`, { form, headers: { origin: fx.consoleUrl } });
    assert.equal(res.status(), 403, fn);
  }
  assert.equal(
    sql("audit.db", `SELECT COUNT(*) FROM access_events WHERE request_id = '${requestIds[0]}'`),
    openings,
    "the viewer opened nothing",
  );
  await page.close();
  setRole("soc");
});

test("no CSP violations or page errors", () => {
  assert.deepEqual(fx.problems, []);
});
