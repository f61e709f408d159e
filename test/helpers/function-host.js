#!/usr/bin/env node
/* global process, console, Buffer, Request, Headers, URL */
/**
 * Plays the platform in front of a serverless function, for tests and the bench:
 * `node function-host.js lambda|fetch PORT` loads `pagent/lambda` or `pagent/fetch` (through the
 * package's own "exports", as a deployed function would) and serves it over HTTP/1.1 on
 * 127.0.0.1:PORT. Each request from restate-server becomes what the handler expects: for Lambda the
 * event a function URL delivers (payload format 2.0, body base64) and its answer the HTTP response;
 * for fetch a Request, its Response streamed back. The function's settings come from this process's
 * environment (PAGENT_SERVICES, RESTATE_IDENTITY_KEYS, OPENAI_API_KEY, ...). Prints
 * `listening PORT` once ready and `request PATH STATUS` per request.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";

const [kind, portArg] = process.argv.slice(2);
if ((kind !== "lambda" && kind !== "fetch") || !portArg) {
  console.error("usage: function-host.js lambda|fetch PORT");
  process.exit(2);
}
const mod = kind === "lambda" ? await import("pagent/lambda") : await import("pagent/fetch");

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The event of a Lambda function URL (payload format version 2.0). */
function functionUrlEvent(req, body) {
  const url = new URL(req.url, "http://function.local");
  const headers = {};
  for (const [name, value] of Object.entries(req.headers)) {
    headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const now = new Date();
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    requestContext: {
      accountId: "anonymous",
      apiId: "pagent-test",
      domainName: req.headers.host ?? "function.local",
      http: {
        method: req.method,
        path: url.pathname,
        protocol: "HTTP/1.1",
        sourceIp: req.socket.remoteAddress ?? "127.0.0.1",
        userAgent: req.headers["user-agent"] ?? "",
      },
      requestId: randomUUID(),
      routeKey: "$default",
      stage: "$default",
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: body.length > 0 ? body.toString("base64") : undefined,
    isBase64Encoded: body.length > 0,
  };
}

async function viaLambda(req, res) {
  const body = await readBody(req);
  const result = await mod.handler(functionUrlEvent(req, body), {
    awsRequestId: randomUUID(),
    functionName: "pagent-test",
  });
  const payload = Buffer.from(result.body ?? "", result.isBase64Encoded ? "base64" : "utf8");
  res.writeHead(result.statusCode, { ...result.headers, "content-length": payload.length });
  res.end(payload);
  return result.statusCode;
}

async function viaFetch(req, res) {
  const body = await readBody(req);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const response = await mod.fetch(
    new Request(new URL(req.url, `http://${req.headers.host ?? "function.local"}`), {
      method: req.method,
      headers,
      body: hasBody ? body : undefined,
    }),
  );
  res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
  if (response.body) for await (const chunk of response.body) res.write(chunk);
  res.end();
  return response.status;
}

const server = http.createServer((req, res) => {
  const handle = kind === "lambda" ? viaLambda : viaFetch;
  handle(req, res).then(
    (status) => console.log(`request ${req.url} ${status}`),
    (error) => {
      console.log(`request ${req.url} failed: ${error.message}`);
      if (!res.headersSent) res.writeHead(502);
      res.end();
    },
  );
});
server.listen(Number(portArg), "127.0.0.1", () => console.log(`listening ${portArg}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
