// Text that anyone can store or link stays text in the console's textareas, in headless Chromium
// against the real `target/debug/server`: `</textarea>` followed by a marker element and a
// `<meta http-equiv=refresh>` is written into every free-text field of the guardrail editor
// (as a SigV4 key holder could through the Bedrock-compatible API), and put in the links that
// fill the test pane (`?text=`) and the Insights editor (`?query=`). On the server-rendered page
// and on the page the browser renders itself (a client-side navigation), no marker element or
// refresh exists and each textarea's value is exactly the text.
//
// Needs: `cargo build -p server`, `scripts/build-site.sh`, `npm ci` here.
// Run: `cd tests/browser && node --test escape.test.mjs`.

import { test } from "node:test";
import assert from "node:assert/strict";

import { consoleFixture } from "./support.mjs";

const fx = consoleFixture("escape");

/** At most 100 characters (a blocked word's limit), no comma (the word list's separator). */
const HOSTILE =
  '</textarea><meta http-equiv="refresh" content="0;url=/x"><b id="gp-injected">x</b> &lt;b&gt;';
const SOC_PASSWORD = "an analyst password 1";

async function signIn(page, name, password) {
  await page.goto(`${fx.consoleUrl}/login`);
  await page.waitForSelector("[data-testid=login-card][data-hydrated=true]");
  await page.fill("#login-name", name);
  await page.fill("#login-password", password);
  await Promise.all([page.waitForURL(`${fx.consoleUrl}/`), page.click("[data-testid=login-submit]")]);
}

/** No element of the hostile text exists, and each textarea holds exactly `HOSTILE`. */
async function assertText(page, selectors, where) {
  const injected = await page.evaluate(
    () => document.querySelectorAll("#gp-injected, meta[http-equiv=refresh]").length,
  );
  assert.equal(injected, 0, `${where}: the text became markup`);
  assert.ok(page.url().startsWith(fx.consoleUrl) && !page.url().endsWith("/x"), `${where}: navigated away`);
  for (const selector of selectors) {
    assert.equal(await page.inputValue(selector), HOSTILE, `${where}: ${selector}`);
  }
}

const EDITOR_FIELDS = [
  "#blocked-input",
  "#blocked-output",
  'textarea[name="topic_definition[0]"]',
  'textarea[name="topic_examples[0]"]',
  "#words",
];

test("</textarea> in every guardrail field, ?text= and ?query= stays text", async () => {
  const page = await fx.newPage();
  await signIn(page, "admin", fx.adminPassword);

  // Write every free-text field of the DRAFT through the editor.
  await page.goto(`${fx.consoleUrl}/guardrails/default`);
  await page.waitForSelector("[data-testid=guardrail-page][data-hydrated=true]");
  await page.fill('input[name="topic_name[0]"]', "Evil");
  for (const selector of EDITOR_FIELDS) await page.fill(selector, HOSTILE);
  await page.click("[data-testid=save-draft]");
  const flash = page.locator("[data-testid=flash]");
  await flash.waitFor();
  assert.match(await flash.innerText(), /draft saved/i);

  // Rendered by the server (and hydrated).
  await page.goto(`${fx.consoleUrl}/guardrails/default`);
  await page.waitForSelector("[data-testid=guardrail-page][data-hydrated=true]");
  await assertText(page, EDITOR_FIELDS, "guardrail editor (server-rendered)");

  // Rendered by the browser: client-side navigations to the list and back.
  await page.evaluate(() => (window.__sameDocument = true));
  await page.click("[data-testid=nav-guardrails]");
  await page.locator('[data-testid=guardrails-table] a[href="/guardrails/default"]').waitFor();
  await page.click('[data-testid=guardrails-table] a[href="/guardrails/default"]');
  await page.locator("[data-testid=draft-editor]").waitFor();
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "a client-side navigation");
  await assertText(page, EDITOR_FIELDS, "guardrail editor (browser-rendered)");

  // A link that fills the test pane.
  await page.goto(`${fx.consoleUrl}/guardrails/default?text=${encodeURIComponent(HOSTILE)}`);
  await page.waitForSelector("[data-testid=guardrail-page][data-hydrated=true]");
  await assertText(page, ["#test-text"], "test pane");

  // A shared Insights link, opened by an analyst.
  const created = await page.request.post(`${fx.consoleUrl}/api/admin_create_account`, {
    headers: { accept: "application/json" },
    form: { name: "sally", role: "soc", password: SOC_PASSWORD },
  });
  assert.equal(created.status(), 200, await created.text());
  await fx.context.clearCookies();
  await signIn(page, "sally", SOC_PASSWORD);
  await page.goto(`${fx.consoleUrl}/insights?query=${encodeURIComponent(HOSTILE)}&range=1h`);
  await page.waitForSelector("main[data-hydrated=true]");
  await assertText(page, ["#query"], "insights editor");

  assert.deepEqual(fx.problems, []);
});
