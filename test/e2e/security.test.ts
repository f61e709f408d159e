/**
 * Another local user against a running embedded server (issue #11): the attacks run as `nobody`
 * through setpriv, against the real restate-server, endpoint and `pagent ui` of a real $PAGENT_HOME.
 * The home sits in a directory `nobody` may traverse, so what stops the attacker is pagent's own
 * permissions, not the test's temp dir.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, spawnCli, waitForLine, type CliProcess } from "../helpers/cli.js";
import { startFakeOpenAI, type FakeOpenAI } from "../helpers/fake-openai.js";
import { listeningSocketsOf, waitForExit } from "../helpers/procs.js";

const LONG = 180_000;

/** Why the attacker cannot be played here, or undefined when it can. */
function cannotDropPrivileges(): string | undefined {
  if (process.getuid?.() !== 0) return "the tests do not run as root, so they cannot become nobody";
  try {
    const uid = execFileSync(
      "setpriv",
      ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "id", "-u"],
      { encoding: "utf8" },
    ).trim();
    return uid === "0" ? "setpriv did not drop root" : undefined;
  } catch (error) {
    return `setpriv --reuid=nobody failed: ${(error as Error).message}`;
  }
}

const skipReason = cannotDropPrivileges();
if (skipReason) console.warn(`SKIPPED the attacker tests of security.test.ts: ${skipReason}`);

/**
 * Runs as nobody: every attack of the issue, each answering how it ended (a status code, or the
 * error code that stopped it). A job request with a foreign base URL and a shell command tool goes
 * to the ingress, the admin API's SQL and the endpoint directly.
 */
const ATTACKER = String.raw`
import fs from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
const { HOME_DIR: home, ENDPOINT_PORT: port, FOREIGN_URL: foreign, MARKER: marker, UI_URL: ui } = process.env;
const sockets = home + "/restate/pagent";
const job = {
  job: "ask-attacker", input: "prompt", prompt: "run the tool", maxSteps: 3, retry: { maxAttempts: 1 },
  model: { name: "gpt-4o", baseUrl: foreign },
  tools: { command: [{ name: "pwn", argv: ["sh", "-c", "touch " + marker] }] },
};
const out = {};
const outcome = (fn) => { try { fn(); return "ok"; } catch (e) { return e.code; } };
const connect = (p) => new Promise((r) => {
  const s = net.connect(p);
  s.on("connect", () => { s.destroy(); r("connected"); });
  s.on("error", (e) => r(e.code));
});
const overSocket = (socketPath, method, path, body) => new Promise((r) => {
  const req = http.request({ socketPath, method, path, headers: { "content-type": "application/json", accept: "application/json" } },
    (res) => { res.resume(); r(res.statusCode); });
  req.on("error", (e) => r(e.code));
  req.end(body);
});
const h2 = (method, path, body) => new Promise((r) => {
  const s = http2.connect("http://127.0.0.1:" + port);
  s.on("error", (e) => r(e.code));
  const q = s.request({ ":method": method, ":path": path, "content-type": "application/vnd.restate.invocation.v5" });
  q.on("response", (h) => { r(h[":status"]); s.close(); });
  q.on("error", (e) => r(e.code));
  q.end(body);
});
const get = (url, headers = {}) => fetch(url, { redirect: "manual", headers }).then((res) => res.status, (e) => e.cause?.code ?? e.message);
for (const name of ["ingress", "admin", "fabric"]) out["connect " + name] = await connect(sockets + "/" + name + ".sock");
out["submit a job to the ingress"] = await overSocket(sockets + "/ingress.sock", "POST", "/Job/ask-attacker/ask/send", JSON.stringify(job));
out["SQL on the admin API"] = await overSocket(sockets + "/admin.sock", "POST", "/query", JSON.stringify({ query: "SELECT * FROM sys_journal" }));
out["list PAGENT_HOME"] = outcome(() => fs.readdirSync(home));
out["read the identity key"] = outcome(() => fs.readFileSync(home + "/identity.pem"));
out["read runtime.json"] = outcome(() => fs.readFileSync(home + "/runtime.json"));
out["list the data dir"] = outcome(() => fs.readdirSync(sockets + "/db"));
out["read a log"] = outcome(() => fs.readFileSync(home + "/logs/endpoint.log"));
out["call the endpoint unsigned"] = await h2("POST", "/invoke/Job/ask", JSON.stringify(job));
out["discover the endpoint unsigned"] = await h2("GET", "/discover");
const base = new URL(ui).origin;
out["the UI without the link"] = await get(base + "/ui/");
out["the UI's SQL without the link"] = await get(base + "/query");
out["the UI with a guessed token"] = await get(base + "/pagent-login?token=guess");
out["the UI with a guessed cookie"] = await get(base + "/ui/", { cookie: "pagent_ui=guess" });
console.log(JSON.stringify(out));
`;

describe.skipIf(skipReason !== undefined)(
  "another local user (nobody) against the embedded server",
  () => {
    let parent: string;
    let home: string;
    let foreign: FakeOpenAI;
    let ui: CliProcess;
    let uiUrl: string;
    let serverPid: number;
    let endpointPort: number;

    const pagent = (args: string[]) =>
      runCli(args, { env: { PAGENT_HOME: home }, timeoutMs: 120_000 });

    beforeAll(async () => {
      // Traversable by nobody, like /tmp or a home directory: only pagent's own modes protect $PAGENT_HOME.
      parent = mkdtempSync(path.join(tmpdir(), "pagent-sec-"));
      chmodSync(parent, 0o755);
      home = path.join(parent, "home");
      foreign = await startFakeOpenAI();
      const started = await pagent(["server", "start", "--json"]);
      expect(started.code, started.stderr).toBe(0);
      const status = JSON.parse(started.stdout) as {
        server: { pid: number };
        endpoint: { port: number };
      };
      serverPid = status.server.pid;
      endpointPort = status.endpoint.port;
      // A job of the user's, so the journal and the data dir hold something worth stealing.
      const job = await pagent([
        "analyze",
        "--text",
        "secret plans for friday",
        "--model",
        "local",
      ]);
      expect(job.code, job.stderr).toBe(0);
      ui = spawnCli(["ui"], { env: { PAGENT_HOME: home }, timeoutMs: 120_000 });
      uiUrl = await waitForLine(ui, /http:\/\/127\.0\.0\.1:\d+\/pagent-login\?\S+/, 60_000);
    }, LONG);

    afterAll(async () => {
      ui?.child.kill("SIGINT");
      await ui?.done;
      await pagent(["server", "stop"]).catch(() => undefined);
      await foreign?.close();
      if (serverPid) await waitForExit(serverPid, 5000);
      rmSync(parent, { recursive: true, force: true });
    }, LONG);

    it(
      "cannot reach Restate, read the home, call the endpoint or open the UI; nothing is sent and nothing runs",
      () => {
        const marker = path.join(parent, "pwned");
        const stdout = execFileSync(
          "setpriv",
          [
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            process.execPath,
            "--input-type=module",
            "-e",
            ATTACKER,
          ],
          {
            encoding: "utf8",
            cwd: "/",
            env: {
              PATH: process.env.PATH,
              HOME_DIR: home,
              ENDPOINT_PORT: String(endpointPort),
              FOREIGN_URL: foreign.baseUrl,
              MARKER: marker,
              UI_URL: uiUrl,
            },
          },
        );
        expect(JSON.parse(stdout)).toEqual({
          "connect ingress": "EACCES",
          "connect admin": "EACCES",
          "connect fabric": "EACCES",
          "submit a job to the ingress": "EACCES",
          "SQL on the admin API": "EACCES",
          "list PAGENT_HOME": "EACCES",
          "read the identity key": "EACCES",
          "read runtime.json": "EACCES",
          "list the data dir": "EACCES",
          "read a log": "EACCES",
          "call the endpoint unsigned": 401,
          "discover the endpoint unsigned": 401,
          "the UI without the link": 403,
          "the UI's SQL without the link": 403,
          "the UI with a guessed token": 403,
          "the UI with a guessed cookie": 403,
        });
        expect(foreign.requests).toHaveLength(0);
        expect(existsSync(marker)).toBe(false);
      },
      LONG,
    );

    it("restate-server has no TCP listener at all", () => {
      expect(listeningSocketsOf(serverPid)).toEqual([]);
    });

    it("an unsigned request to the endpoint gets 401 from the user too", async () => {
      const status = await new Promise<number | string>((resolve) => {
        const session = http2.connect(`http://127.0.0.1:${endpointPort}`);
        session.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
        const req = session.request({
          ":method": "POST",
          ":path": "/invoke/Job/analyze",
          "content-type": "application/vnd.restate.invocation.v5",
        });
        req.on("response", (headers) => {
          resolve(Number(headers[":status"]));
          session.close();
        });
        req.end("{}");
      });
      expect(status).toBe(401);
    });

    it("nothing under $PAGENT_HOME is open to group or others", () => {
      const open = execFileSync("find", [home, "-perm", "/077"], { encoding: "utf8" }).trim();
      expect(open).toBe("");
    });

    it("the UI link works once, for the user, and the cookie it sets opens the UI", async () => {
      const login = await fetch(uiUrl, { redirect: "manual" });
      expect(login.status).toBe(302);
      expect(login.headers.get("location")).toBe("/ui/");
      const cookie = login.headers.get("set-cookie")!;
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/SameSite=Strict/);
      const session = cookie.split(";")[0]!;
      const page = await fetch(new URL("/ui/", uiUrl), { headers: { cookie: session } });
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toMatch(/text\/html/);
      const deployments = await fetch(new URL("/deployments", uiUrl), {
        headers: { cookie: session },
      });
      expect(deployments.status).toBe(200);
      expect((await fetch(uiUrl, { redirect: "manual" })).status).toBe(403);
    });
  },
);
