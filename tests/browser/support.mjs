// What every browser test needs: the workspace's paths, a check that the built pieces exist,
// the real `target/debug/server` started on free ports (its announced addresses and one-time
// admin password read from stdout), and Chromium's launch flags for this closed network.
//
// Env: GOLDEN_PATH_SERVER_BIN, GOLDEN_PATH_GATEWAY_BIN, CHROMIUM_PATH override the defaults.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const serverBin = process.env.GOLDEN_PATH_SERVER_BIN ?? path.join(root, "target/debug/server");
export const gatewayBin = process.env.GOLDEN_PATH_GATEWAY_BIN ?? path.join(root, "target/debug/gateway");
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const sitePkg = path.join(root, "target/site/pkg");
export const shots = path.join(root, "target/screenshots");
const STARTUP_MS = 60_000;

/** Chromium's flags: headless as root, and no calls to Google's hosts (refused here). */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Fail early, with the command that makes it, when a built piece is missing. */
export function requireFiles(pairs) {
  for (const [file, hint] of [
    [serverBin, "cargo build -p server"],
    [chromiumPath, "apt-get install chromium"],
    ...pairs,
  ]) {
    assert.ok(existsSync(file), `${file} is missing: run \`${hint}\` first`);
  }
  mkdirSync(shots, { recursive: true });
}

/**
 * Start the server with its data in `dataDir` (gateway and console on port 0 unless `env` says
 * otherwise). Resolves when both listeners are announced, with `{ console, gateway, password,
 * log(), stop() }`; `password` is the one-time admin password of a first run.
 */
export function startServer(dataDir, env = {}) {
  return new Promise((resolve, reject) => {
    let log = "";
    const server = spawn(serverBin, [], {
      cwd: root,
      env: {
        ...process.env,
        GOLDEN_PATH_DATA_DIR: dataDir,
        GOLDEN_PATH_SERVER__LISTEN: "127.0.0.1:0",
        LEPTOS_SITE_ADDR: "127.0.0.1:0",
        RUST_LOG: process.env.RUST_LOG ?? "info",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise((done) => server.once("exit", done));
    const running = () => server.exitCode === null && server.signalCode === null;
    // Last resort if the runner dies between hooks.
    process.on("exit", () => running() && server.kill("SIGKILL"));
    const handle = {
      log: () => log,
      async stop() {
        if (!running()) return;
        server.kill("SIGTERM");
        const timeout = new Promise((r) => setTimeout(() => r("timeout"), 10_000));
        if ((await Promise.race([exited, timeout])) === "timeout") {
          server.kill("SIGKILL");
          await exited;
        }
      },
    };
    const timer = setTimeout(
      () => reject(new Error(`server did not announce both listeners in ${STARTUP_MS} ms\n${log}`)),
      STARTUP_MS,
    );
    server.stderr.on("data", (chunk) => {
      log = (log + chunk).slice(-20_000);
    });
    let buffered = "";
    server.stdout.on("data", (chunk) => {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        let m;
        if ((m = line.match(/^console admin password \(shown once\): (\S+)$/))) handle.password = m[1];
        if ((m = line.match(/^gateway listening on (http:\/\/\S+)$/))) handle.gateway = m[1];
        if ((m = line.match(/^console listening on (http:\/\/\S+)$/))) handle.console = m[1];
        if (handle.gateway && handle.console) {
          clearTimeout(timer);
          resolve(handle);
        }
      }
    });
    server.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}, signal ${signal})\n${log}`));
    });
    server.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * The hooks every console journey shares, registered with node:test's `before`/`after`: check
 * the built pieces (the wasm bundle plus `files`, as for `requireFiles`), start the server on a
 * fresh data dir, launch Chromium on a fresh profile, and watch every page for CSP violations
 * and uncaught errors. Returns the fixture, filled in once `before` has run:
 * `{ server, context, dataDir, consoleUrl, gatewayUrl, adminPassword, problems, unwatched,
 *    newPage() }` — add a page to `unwatched` when its failures are intended.
 */
export function consoleFixture(name, files = []) {
  const fx = {
    problems: [],
    unwatched: new WeakSet(),
    newPage: () => fx.context.newPage(),
  };
  let profileDir;
  const watch = (page) => {
    page.on("console", (msg) => {
      if (!fx.unwatched.has(page) && msg.type() === "error" && /Content.Security.Policy/i.test(msg.text())) {
        fx.problems.push(`CSP: ${msg.text()}`);
      }
    });
    page.on("pageerror", (err) => {
      if (!fx.unwatched.has(page)) fx.problems.push(`page error: ${err.message}`);
    });
  };
  before(async () => {
    requireFiles([[path.join(sitePkg, "console_bg.wasm"), "scripts/build-site.sh"], ...files]);
    fx.dataDir = mkdtempSync(path.join(tmpdir(), `gp-${name}-data-`));
    profileDir = mkdtempSync(path.join(tmpdir(), `gp-${name}-chromium-`));
    fx.server = await startServer(fx.dataDir);
    fx.consoleUrl = fx.server.console;
    fx.gatewayUrl = fx.server.gateway;
    fx.adminPassword = fx.server.password;
    assert.ok(fx.adminPassword, "first run must print the admin password");
    assert.equal(fx.adminPassword.length, 20);
    fx.context = await chromium.launchPersistentContext(profileDir, {
      executablePath: chromiumPath,
      headless: true,
      args: ["--headless", ...CHROMIUM_ARGS],
      viewport: { width: 1280, height: 860 },
    });
    fx.context.on("page", watch);
    for (const page of fx.context.pages()) watch(page);
  });
  after(async () => {
    await fx.context?.close().catch(() => {});
    await fx.server?.stop();
    for (const dir of [fx.dataDir, profileDir]) {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });
  return fx;
}
