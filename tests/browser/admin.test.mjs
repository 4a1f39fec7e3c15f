// The admin half of the console in headless Chromium, against the real `target/debug/server`
// (which serves the gateway in the same process) and the real `target/debug/gateway` CLI (to mint
// a token from the same data dir).
//
// Journey: an admin creates a viewer account, edits the default guardrail's DRAFT (e-mail
// addresses now blocked, a custom word), tests it, creates a version, compares it with v1, pins it
// to the `default` feature — and a gateway request then shows the new behaviour (blocked instead
// of anonymized). The audit page shows every step. Then a guardrail is created and deleted (the
// id typed to confirm), and deleting the pinned default is refused. A viewer is refused the
// admin pages.
//
// Needs: `cargo build -p server -p gateway`, `scripts/build-site.sh`, `npm ci` here.
// Run: `cd tests/browser && node --test admin.test.mjs`. Screenshots: target/screenshots/admin-*.png

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

import {
  CHROMIUM_ARGS,
  chromiumPath,
  gatewayBin,
  requireFiles,
  shots,
  sitePkg,
  startServer,
} from "./support.mjs";

const VIEWER_PASSWORD = "viewer password 123";

let server;
let browser;
let dataDir;
let consoleUrl;
let gatewayUrl;
let adminPassword;
const problems = [];

before(async () => {
  requireFiles([
    [gatewayBin, "cargo build -p gateway"],
    [path.join(sitePkg, "console_bg.wasm"), "scripts/build-site.sh"],
  ]);
  dataDir = mkdtempSync(path.join(tmpdir(), "gp-admin-data-"));
  server = await startServer(dataDir);
  const announced = server;
  consoleUrl = announced.console;
  gatewayUrl = announced.gateway;
  adminPassword = announced.password;
  assert.ok(adminPassword, "first run must print the admin password");
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", ...CHROMIUM_ARGS],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function newContext() {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  context.on("page", (page) => {
    page.on("console", (msg) => {
      if (msg.type() === "error" && /Content.Security.Policy/i.test(msg.text())) {
        problems.push(`CSP: ${msg.text()}`);
      }
    });
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  });
  return context;
}

async function signIn(page, name, password) {
  await page.goto(`${consoleUrl}/login`);
  await page.waitForSelector('[data-testid="login-card"][data-hydrated="true"]');
  await page.fill("#login-name", name);
  await page.fill("#login-password", password);
  await Promise.all([page.waitForURL(`${consoleUrl}/`), page.click('[data-testid="login-submit"]')]);
}

async function flash(page, pattern) {
  const el = page.locator('[data-testid="flash"]');
  await el.waitFor();
  await assert.doesNotReject(async () => {
    for (let i = 0; i < 50; i++) {
      if (pattern.test(await el.innerText())) return;
      await page.waitForTimeout(100);
    }
    throw new Error(`flash was "${await el.innerText()}", expected ${pattern}`);
  });
}

async function shot(page, name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shots, `admin-${name}.png`), fullPage: true });
}

/** A chat completion through the gateway as the `default` feature. */
async function chat(content) {
  const { stdout } = await promisify(execFile)(
    gatewayBin,
    ["token", "--sub", "alice@example.com", "--feature", "default", "--ttl", "10m"],
    { env: { ...process.env, GOLDEN_PATH_DATA_DIR: dataDir } },
  );
  const res = await fetch(`${gatewayUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${stdout.trim()}`, "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content }] }),
  });
  const body = await res.json();
  return {
    status: res.status,
    action: res.headers.get("x-guardrail-action"),
    text: body.choices?.[0]?.message?.content ?? "",
    finish: body.choices?.[0]?.finish_reason,
  };
}

test("an admin edits a draft, versions it, pins it, and the gateway applies it", async () => {
  const before = await chat("Reply to jane.doe@example.com about her order");
  assert.equal(before.status, 200);
  assert.equal(before.action, "INTERVENED");
  assert.match(before.text, /\{EMAIL\}/, "the shipped guardrail anonymizes e-mail addresses");

  const context = await newContext();
  const page = await context.newPage();
  await signIn(page, "admin", adminPassword);
  for (const link of ["nav-guardrails", "nav-features", "nav-accounts", "nav-audit"]) {
    await page.locator(`[data-testid="${link}"]`).waitFor();
  }

  // Accounts: create a viewer.
  await page.goto(`${consoleUrl}/admin/accounts`);
  await page.waitForSelector('[data-testid="accounts-page"][data-hydrated="true"]');
  await page.fill("#new-name", "vera");
  await page.selectOption("#new-role", "viewer");
  await page.fill("#new-password", VIEWER_PASSWORD);
  await page.click('[data-testid="create-account"] button[type="submit"]');
  await flash(page, /created/i);
  await page.locator('tr[data-user="vera"]').waitFor();
  await shot(page, "accounts");

  // Guardrails list.
  await page.goto(`${consoleUrl}/guardrails`);
  await page.locator('[data-testid="guardrails-table"]').waitFor();
  await shot(page, "guardrails");
  await page.click('[data-testid="guardrails-table"] a[href="/guardrails/default"]');
  await page.waitForSelector('[data-testid="guardrail-page"][data-hydrated="true"]');
  await page.locator('[data-testid="draft-editor"]').waitFor();

  // Edit the DRAFT: block e-mail addresses in prompts, add a blocked word, bad regex first.
  await page.selectOption('select[name="pii_in[EMAIL]"]', "BLOCK");
  await page.fill("#words", "moonshot\nproject-x");
  await page.fill('input[name="regex_name[0]"]', "employee-id");
  await page.fill('input[name="regex_pattern[0]"]', "EMP-([0-9]");
  await page.locator(".regex-error").waitFor();
  await page.fill('input[name="regex_pattern[0]"]', "EMP-[0-9]{6}");
  await page.locator(".regex-ok").waitFor();
  await shot(page, "guardrail-editor");
  await page.click('[data-testid="save-draft"]');
  await flash(page, /draft saved/i);
  assert.equal(await page.inputValue('select[name="pii_in[EMAIL]"]'), "BLOCK");

  // Test pane against the DRAFT.
  await page.fill("#test-text", "Mail jane.doe@example.com about moonshot, badge EMP-123456.");
  await page.selectOption("#test-version", "DRAFT");
  await page.click('[data-testid="test-submit"]');
  await page.locator('[data-testid="test-outcome"]').waitFor();
  assert.equal(await page.locator('[data-testid="test-verdict"]').innerText(), "Blocked");
  const marks = await page.locator('[data-testid="test-highlighted"] mark').allInnerTexts();
  assert.ok(marks.includes("jane.doe@example.com"), `highlighted: ${marks}`);
  assert.ok(marks.includes("moonshot"), `highlighted: ${marks}`);
  await page.locator('[data-testid="test-outcome"]').scrollIntoViewIfNeeded();
  await shot(page, "guardrail-test");

  // Create version 2.
  await page.goto(`${consoleUrl}/guardrails/default`);
  await page.waitForSelector('[data-testid="guardrail-page"][data-hydrated="true"]');
  await page.fill("#version-description", "block e-mail addresses");
  await page.click('[data-testid="create-version-submit"]');
  await flash(page, /version created/i);
  await page.locator('[data-testid="version-tabs"] a[href="/guardrails/default?version=2"]').waitFor();

  // Read-only v2 and the diff against v1.
  await page.goto(`${consoleUrl}/guardrails/default?version=2&left=1&right=2`);
  await page.locator('[data-testid="readonly-version"]').waitFor();
  await page.locator('[data-testid="diff-table"]').waitFor();
  assert.ok((await page.locator("tr.diff-changed, tr.diff-added").count()) > 0);
  await shot(page, "guardrail-diff");

  // Pin v2 to the default feature.
  await page.goto(`${consoleUrl}/features`);
  await page.waitForSelector('[data-testid="features-page"][data-hydrated="true"]');
  const form = page.locator('[data-testid="feature-form-default"]');
  await form.locator('select[name="guardrail_version"]').selectOption("2");
  await form.locator('input[name="requests_per_minute"]').fill("120");
  await form.locator('[data-testid="save-feature"]').click();
  await flash(page, /saved/i);
  assert.equal(await form.locator('select[name="guardrail_version"]').inputValue(), "2");
  await shot(page, "features");

  // The gateway now blocks what it used to anonymize — no restart.
  const afterPin = await chat("Reply to jane.doe@example.com about her order");
  assert.equal(afterPin.action, "INTERVENED");
  assert.doesNotMatch(afterPin.text, /\{EMAIL\}/);
  assert.doesNotMatch(afterPin.text, /jane\.doe/);

  // Every step is in the audit trail.
  await page.goto(`${consoleUrl}/audit?range=1h`);
  await page.locator('[data-testid="audit-table"]').waitFor();
  for (const kind of ["login", "account.create", "guardrail.edit", "guardrail.version", "feature.binding", "feature.throttle"]) {
    assert.ok(
      (await page.locator(`[data-testid="audit-table"] tr[data-kind="${kind}"]`).count()) > 0,
      `audit shows ${kind}`,
    );
  }
  await shot(page, "audit");
  await page.goto(`${consoleUrl}/audit?kind=feature.binding&range=1h`);
  await page.locator('[data-testid="audit-table"]').waitFor();
  assert.equal(await page.locator('[data-testid="audit-table"] tbody tr').count(), 1);
  await context.close();
});

test("an admin creates a guardrail and deletes it; a pinned one is refused", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await signIn(page, "admin", adminPassword);

  // Create: the editor of the new guardrail opens.
  await page.goto(`${consoleUrl}/guardrails`);
  await page.waitForSelector('[data-testid="guardrails-page"]');
  await page.fill("#new-guardrail-name", "scratch-pad");
  await page.fill("#new-guardrail-description", "created in the browser test");
  await Promise.all([
    page.waitForURL(/\/guardrails\/[a-z0-9]+$/),
    page.click('[data-testid="create-guardrail-submit"]'),
  ]);
  await page.waitForSelector('[data-testid="guardrail-page"][data-hydrated="true"]');
  assert.equal(await page.locator("h1").innerText(), "scratch-pad");
  await page.locator('[data-testid="draft-editor"]').waitFor();
  const id = new URL(page.url()).pathname.split("/").pop();

  // A second guardrail with the same name is refused, with the reason.
  await page.goto(`${consoleUrl}/guardrails`);
  await page.waitForSelector('[data-testid="guardrails-page"]');
  await page.locator(`[data-testid="guardrails-table"] a[href="/guardrails/${id}"]`).waitFor();
  await page.fill("#new-guardrail-name", "scratch-pad");
  await page.click('[data-testid="create-guardrail-submit"]');
  await flash(page, /already exists/i);

  // Delete: the id must be typed again; then it is gone from the list.
  await page.goto(`${consoleUrl}/guardrails/${id}`);
  await page.waitForSelector('[data-testid="guardrail-page"][data-hydrated="true"]');
  await page.fill("#delete-confirm", "not-the-id");
  await page.click('[data-testid="delete-guardrail-submit"]');
  await flash(page, /type the guardrail's id/i);
  await page.locator("#delete").scrollIntoViewIfNeeded();
  await shot(page, "guardrail-delete");
  await page.fill("#delete-confirm", id);
  await Promise.all([
    page.waitForURL(/\/guardrails\?notice=/),
    page.click('[data-testid="delete-guardrail-submit"]'),
  ]);
  await page.locator('[data-testid="guardrails-table"]').waitFor();
  assert.equal(await page.locator(`[data-testid="guardrails-table"] a[href="/guardrails/${id}"]`).count(), 0);

  // The default guardrail is pinned by the default feature: refused, saying so.
  await page.goto(`${consoleUrl}/guardrails/default`);
  await page.waitForSelector('[data-testid="guardrail-page"][data-hydrated="true"]');
  await page.fill("#delete-confirm", "default");
  await page.click('[data-testid="delete-guardrail-submit"]');
  await flash(page, /pinned by a feature/i);
  const still = await chat("hello there");
  assert.equal(still.status, 200, "the pinned guardrail still guards requests");

  // Both changes are in the audit trail.
  await page.goto(`${consoleUrl}/audit?range=1h`);
  await page.locator('[data-testid="audit-table"]').waitFor();
  for (const kind of ["guardrail.create", "guardrail.delete"]) {
    assert.ok(
      (await page.locator(`[data-testid="audit-table"] tr[data-kind="${kind}"]`).count()) > 0,
      `audit shows ${kind}`,
    );
  }
  await context.close();
});

test("a viewer is refused every admin page and sees no admin links", async () => {
  const context = await newContext();
  const page = await context.newPage();
  await signIn(page, "vera", VIEWER_PASSWORD);
  await page.locator('[data-testid="current-user"]').waitFor();
  assert.equal(await page.locator('[data-testid="nav-guardrails"]').count(), 0);
  assert.equal(await page.locator('[data-testid="nav-audit"]').count(), 0);
  for (const route of ["/guardrails", "/guardrails/default", "/features", "/admin/accounts", "/audit"]) {
    const res = await page.goto(`${consoleUrl}${route}`);
    assert.equal(res.status(), 403, `${route} answers 403`);
    await page.locator('[data-testid="forbidden"]').waitFor();
    assert.equal(await page.locator('[data-testid="draft-editor"], [data-testid="accounts-table"]').count(), 0);
  }
  await shot(page, "viewer-refused");
  await context.close();
});

test("no CSP violations or page errors", () => {
  assert.deepEqual(problems, []);
});
