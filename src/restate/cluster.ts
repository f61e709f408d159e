/**
 * A local Restate cluster for trying and testing pagent against several nodes: N restate-server
 * processes on loopback, one TOML config each, and one `pagent serve` endpoint registered with them.
 * Everything lives under `$PAGENT_HOME/cluster/`.
 */
import { execFile, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { UnavailableError, UsageError } from "../errors.js";
import { AdminClient } from "./admin.js";
import {
  endpointHealthy,
  ensureEndpoint,
  forgetIfNotOurs,
  registerEndpoint,
  resumeStuckInvocations,
  endpointSpec,
  type EndpointRecord,
  type EndpointSettings,
} from "./endpoint-process.js";
import { ensureIdentityKey } from "./identity.js";
import { retryAdmin } from "./retry.js";
import { SERVICE_NAMES } from "./runtime.js";
import {
  checkSocketPath,
  freePort,
  isAlive,
  processStartTime,
  restateBinary,
  stopProcess,
  verifyOwnProcess,
  type ServerSockets,
} from "./server.js";
import { makePrivateDir, readStateFile, withStateLock, writeStateFile } from "./state-file.js";
import { unixTarget } from "./transport.js";

export const CLUSTER_NAME = "pagent-local";
/** Few partitions keep three nodes on a small machine lean; enough to spread leaders over the nodes. */
export const CLUSTER_PARTITIONS = 4;
const HOST = "127.0.0.1";
/** How long partition leaders must stay put after start-up before the cluster counts as settled. */
const SETTLE_MS = 3000;

export interface ClusterNode {
  /** 1-based; node 1 is the one that provisions the cluster. */
  index: number;
  name: string;
  /** 0 once stopped. */
  pid: number;
  startTime?: number;
  /**
   * The node listens on these unix sockets only (in its data dir, under the user's 0700
   * $PAGENT_HOME): no other local user reaches the cluster. A cluster made by an older pagent had
   * TCP `ports` here instead.
   */
  sockets: ServerSockets;
}

/** What `pagent cluster` remembers between commands (`$PAGENT_HOME/cluster/cluster.json`). */
export interface ClusterState {
  clusterName: string;
  partitions: number;
  replication: number;
  nodes: ClusterNode[];
  endpointPort: number;
  endpoint?: EndpointRecord;
}

export function clusterPaths(home: string) {
  const dir = path.join(home, "cluster");
  return {
    dir,
    state: path.join(dir, "cluster.json"),
    data: path.join(dir, "data"),
    logs: path.join(dir, "logs"),
    lock: path.join(home, "cluster.lock"),
    /** The nodes' request identity private key (0600), shared by all: the endpoint trusts one key. */
    identityKey: path.join(dir, "identity.pem"),
    /** The nodes' TMPDIR: their scratch `invoker-*` dirs stay private. */
    tmp: path.join(dir, "tmp"),
    config: (name: string) => path.join(dir, `${name}.toml`),
    nodeLog: (name: string) => path.join(dir, "logs", `${name}.log`),
    endpointLog: path.join(dir, "logs", "endpoint.log"),
  };
}

/** The node's sockets as `unix:` addresses: what connect mode, restatectl and Restate's config take. */
export function nodeUrls(node: ClusterNode) {
  return {
    ingressUrl: `unix:${node.sockets.ingress}`,
    adminUrl: `unix:${node.sockets.admin}`,
    nodeUrl: `unix:${node.sockets.node}`,
  };
}

function nodeAdmin(node: ClusterNode, timeoutMs: number): AdminClient {
  return new AdminClient(unixTarget(node.sockets.admin), timeoutMs);
}

/** The flags that point pagent at every node of the cluster, in node order. */
export function connectFlags(nodes: ClusterNode[]): { restateUrl: string; adminUrl: string } {
  return {
    restateUrl: nodes.map((n) => nodeUrls(n).ingressUrl).join(","),
    adminUrl: nodes.map((n) => nodeUrls(n).adminUrl).join(","),
  };
}

/** TOML basic strings share JSON's escapes for everything a path or URL contains. */
const toml = (value: string) => JSON.stringify(value);

/**
 * One node's restate-server config. Every key here is checked against `restate-server
 * --dump-config` (1.7.12): an unknown key would be ignored without a word.
 */
export function nodeConfig(
  state: ClusterState,
  node: ClusterNode,
  dataDir: string,
  identityKeyFile: string,
): string {
  const peers = state.nodes.map((n) => toml(nodeUrls(n).nodeUrl));
  return `# pagent local cluster "${state.clusterName}": ${node.name} of ${state.nodes.length}, written by \`pagent cluster up\`
cluster-name = ${toml(state.clusterName)}
node-name = ${toml(node.name)}
# data lands in <base-dir>/<node-name>/
base-dir = ${toml(dataDir)}
roles = ["http-ingress", "admin", "worker", "log-server", "metadata-server"]
# exactly one node may provision a new cluster; the others join it
auto-provision = ${node.index === 1 ? "true" : "false"}
default-num-partitions = ${state.partitions}
# every log record and every partition on ${state.replication} node(s): one node may be lost
default-replication = ${state.replication}
# unix sockets only, in <base-dir>/<node-name>/: no TCP port another local user could reach
listen-mode = "unix"
advertised-address = ${toml(nodeUrls(node).nodeUrl)}
# a node joining (or coming back) is trusted after 0.5 s instead of 5 s: faster start and rejoin
gossip-suspect-interval = "500ms"
# three nodes on one machine: cap RocksDB's memory (default 2 GiB each)
rocksdb-total-memory-size = "512 MiB"
log-format = "compact"

[metadata-client]
type = "replicated"
addresses = [${peers.join(", ")}]

[bifrost]
default-provider = "replicated"

[worker.invoker]
# every request to the endpoint is signed with this key; the endpoint refuses unsigned ones
request-identity-private-key-pem-file = ${toml(identityKeyFile)}
`;
}

/** The remembered cluster; a pid that is no longer the process pagent started reads as 0 (stopped). */
export function readClusterState(home: string): ClusterState | undefined {
  const state = readStateFile<ClusterState>(clusterPaths(home).state);
  if (!state) return undefined;
  for (const node of state.nodes) {
    const args = ["restate-server", clusterPaths(home).config(node.name)];
    if (!verifyOwnProcess(node.pid, { startTime: node.startTime, args })) node.pid = 0;
  }
  forgetIfNotOurs(state.endpoint);
  return state;
}

function writeClusterState(home: string, state: ClusterState): void {
  writeStateFile(clusterPaths(home).state, state);
}

/** Only one command at a time starts or stops the cluster. */
function withClusterLock<T>(home: string, fn: () => Promise<T>): Promise<T> {
  return withStateLock(home, clusterPaths(home).lock, fn);
}

async function newClusterState(home: string, nodes: number): Promise<ClusterState> {
  const data = clusterPaths(home).data;
  return {
    clusterName: CLUSTER_NAME,
    partitions: CLUSTER_PARTITIONS,
    replication: Math.min(2, nodes),
    endpointPort: await freePort(HOST),
    nodes: Array.from({ length: nodes }, (_, i) => {
      const name = `node-${i + 1}`;
      const dir = path.join(data, name);
      return {
        index: i + 1,
        name,
        pid: 0,
        sockets: {
          ingress: path.join(dir, "ingress.sock"),
          admin: path.join(dir, "admin.sock"),
          node: path.join(dir, "fabric.sock"),
        },
      };
    }),
  };
}

function spawnNode(home: string, node: ClusterNode): number {
  const paths = clusterPaths(home);
  const log = openSync(paths.nodeLog(node.name), "a", 0o600);
  // Only the config file decides: no model key, and no RESTATE_* variable of the caller overriding it.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => key !== "OPENAI_API_KEY" && !key.startsWith("RESTATE_"),
    ),
  );
  env.TMPDIR = paths.tmp;
  const child = spawn(restateBinary(), ["--no-logo", "--config-file", paths.config(node.name)], {
    detached: true,
    stdio: ["ignore", log, log],
    env,
  });
  closeSync(log);
  child.unref();
  return child.pid!;
}

function restatectlBinary(): string {
  const require = createRequire(import.meta.url);
  const pkg = `@restatedev/restatectl-${process.platform}-${process.arch}`;
  try {
    return require.resolve(`${pkg}/bin/restatectl`);
  } catch {
    throw new UnavailableError(
      `restatectl is not installed for ${process.platform}-${process.arch} (${pkg}); reinstall pagent with optional dependencies`,
    );
  }
}

/**
 * Runs SQL over the cluster's own tables (`nodes`, `partitions`, ...). Restate 1.7 serves them only
 * on the node-to-node port (what `restatectl sql` talks to), not on the admin API's /query.
 */
export async function clusterSql<T>(nodeUrl: string, sql: string, timeoutMs = 3000): Promise<T[]> {
  const binary = restatectlBinary();
  return new Promise((resolve, reject) => {
    execFile(
      binary,
      ["--address", nodeUrl, "sql", "--json", sql],
      { timeout: timeoutMs, env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" } },
      (error, stdout, stderr) => {
        if (error) {
          // NO_COLOR keeps escapes out; the last line of the error chain names the cause.
          const detail = stderr
            .trim()
            .split("\n")
            .slice(-1)[0]
            ?.replace(/^[\s└─├]+/, "");
          reject(
            new UnavailableError(`cluster query at ${nodeUrl} failed: ${detail || error.message}`),
          );
          return;
        }
        const text = stdout.trim();
        try {
          resolve(text ? (JSON.parse(text) as T[]) : []);
        } catch (parseError) {
          reject(
            new UnavailableError(`cluster query at ${nodeUrl} answered no JSON`, {
              cause: parseError,
            }),
          );
        }
      },
    );
  });
}

/** The cluster as its nodes see it: which node is alive, and which node leads each partition. */
export interface ClusterView {
  /** The node whose answer this is. */
  answeredBy: string;
  nodes: { name: string; id: string; state: string }[];
  partitions: { id: number; leader: string | null; replicas: string[] }[];
}

/** Asks the nodes in turn (those whose process lives first) until one answers. */
export async function clusterView(state: ClusterState, timeoutMs = 3000): Promise<ClusterView> {
  const order = [...state.nodes].sort((a, b) => Number(isAlive(b.pid)) - Number(isAlive(a.pid)));
  let lastError: unknown = new UnavailableError("the cluster has no nodes");
  for (const node of order) {
    const url = nodeUrls(node).nodeUrl;
    try {
      const [nodes, partitions] = await Promise.all([
        clusterSql<{ name: string; plain_node_id: string; state: string }>(
          url,
          "SELECT name, plain_node_id, state FROM nodes",
          timeoutMs,
        ),
        clusterSql<{
          partition_id: number;
          leader_plain_node_id: string | null;
          current_replica_set: string | null;
        }>(
          url,
          "SELECT partition_id, leader_plain_node_id, current_replica_set FROM partitions ORDER BY partition_id",
          timeoutMs,
        ),
      ]);
      const nameOf = new Map(nodes.map((n) => [n.plain_node_id, n.name]));
      return {
        answeredBy: node.name,
        nodes: nodes.map((n) => ({ name: n.name, id: n.plain_node_id, state: n.state })),
        partitions: partitions.map((p) => ({
          id: Number(p.partition_id),
          leader: p.leader_plain_node_id ? (nameOf.get(p.leader_plain_node_id) ?? null) : null,
          replicas: (p.current_replica_set ?? "")
            .split(",")
            .filter(Boolean)
            .map((id) => nameOf.get(id.trim()) ?? id.trim()),
        })),
      };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

/** Why the cluster is not (yet) fit for work; empty when every node is alive and every partition has a live leader. */
export function clusterProblems(state: ClusterState, view: ClusterView | undefined): string[] {
  const problems: string[] = [];
  for (const node of state.nodes) {
    if (!isAlive(node.pid)) problems.push(`${node.name} is not running`);
  }
  if (!view) return [...problems, "no node answered the cluster query"];
  const alive = new Set(view.nodes.filter((n) => n.state === "alive").map((n) => n.name));
  for (const node of state.nodes) {
    if (isAlive(node.pid) && !alive.has(node.name)) {
      problems.push(`${node.name} is not (yet) alive in the cluster`);
    }
  }
  if (view.partitions.length < state.partitions) {
    problems.push(`${view.partitions.length} of ${state.partitions} partitions exist`);
  }
  for (const p of view.partitions) {
    // A killed node stays "alive" in the nodes table for a moment: its process is checked too.
    const leader = state.nodes.find((n) => n.name === p.leader);
    if (!p.leader || !alive.has(p.leader) || !leader || !isAlive(leader.pid)) {
      problems.push(`partition ${p.id} has no leader on a live node`);
    }
  }
  return problems;
}

/** Every node's admin API and ingress answer, and SQL over every partition works through each admin. */
async function nodesServe(state: ClusterState): Promise<boolean> {
  const checks = state.nodes.map(async (node) => {
    const admin = nodeAdmin(node, 2000);
    if (!(await admin.healthy(1000))) return false;
    const ingress = unixTarget(node.sockets.ingress);
    try {
      const res = await ingress.fetch(`${ingress.url}/restate/health`, {
        signal: AbortSignal.timeout(1000),
      });
      if (!res.ok) return false;
    } catch {
      return false;
    }
    return admin.queryable(2000);
  });
  return (await Promise.all(checks)).every(Boolean);
}

function logTail(file: string, lines = 5): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Which node leads each partition and which nodes hold it, and who is alive: what moves while a cluster settles. */
function layout(view: ClusterView): string {
  const alive = view.nodes
    .filter((n) => n.state === "alive")
    .map((n) => n.name)
    .sort();
  const partitions = view.partitions.map(
    (p) => `${p.id}:${p.leader}:${[...p.replicas].sort().join(",")}`,
  );
  return `${alive.join(",")}|${partitions.join(" ")}`;
}

/** A layout of the cluster and since when it has not changed. */
interface Steady {
  layout: string;
  since: number;
}

/**
 * Waits until every node is alive, every partition has a live leader and every node serves (twice in a
 * row), and the partitions' leaders and replicas have not moved for `settleMs`: after a node starts
 * or comes back, the cluster controller moves leaders for seconds, and each move makes Restate run
 * the steps that were in flight on that partition again.
 */
async function waitForCluster(
  home: string,
  state: ClusterState,
  deadline: number,
  settleMs: number,
  steady?: Steady,
): Promise<Steady> {
  let problems: string[] = [];
  let healthyChecks = 0;
  let current = steady;
  while (Date.now() < deadline) {
    for (const node of state.nodes) {
      if (!isAlive(node.pid)) {
        const log = clusterPaths(home).nodeLog(node.name);
        throw new UnavailableError(
          `${node.name} exited while the cluster was starting; see ${log}:\n${logTail(log)}`,
        );
      }
    }
    const view = await clusterView(state, 2000).catch(() => undefined);
    problems = clusterProblems(state, view);
    if (view && problems.length === 0 && (await nodesServe(state))) {
      healthyChecks++;
      const now = layout(view);
      if (current?.layout !== now) current = { layout: now, since: Date.now() };
      if (healthyChecks >= 2 && Date.now() - current.since >= settleMs) return current;
      problems = ["partition leaders are still moving"];
    } else {
      healthyChecks = 0;
      current = undefined;
      if (problems.length === 0) {
        problems = ["not every node serves its admin API, ingress and SQL yet"];
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new UnavailableError(
    `the cluster was not ready in time: ${problems.join("; ")}; logs in ${clusterPaths(home).logs}`,
  );
}

export interface ClusterUpOptions extends EndpointSettings {
  /** Size of a new cluster; an existing one keeps its size. */
  nodes?: number;
  timeoutMs?: number;
  progress?: (line: string) => void;
}

export interface ClusterUpResult {
  /** Nodes this call started (all of them for a new cluster, the missing ones otherwise). */
  started: string[];
  endpointStarted: boolean;
  registered: boolean;
  /** From the first node started to every partition led by a live node. */
  readyMs: number;
  /** From the first node started to leaders that stopped moving (see {@link SETTLE_MS}). */
  settledMs: number;
}

/** Starts what is missing of the local cluster and its endpoint, and waits until it is fit for work. */
export async function clusterUp(options: ClusterUpOptions): Promise<ClusterUpResult> {
  const paths = clusterPaths(options.home);
  const progress = options.progress ?? (() => undefined);
  return withClusterLock(options.home, async () => {
    let state = readClusterState(options.home);
    if (state && options.nodes !== undefined && options.nodes !== state.nodes.length) {
      throw new UsageError(
        `the cluster in ${paths.dir} has ${state.nodes.length} nodes; to start over with ${options.nodes}, run \`pagent cluster down --purge\` first`,
      );
    }
    if (state?.nodes.some((node) => !node.sockets)) {
      throw new UsageError(
        `the cluster in ${paths.dir} was made by an older pagent on TCP ports; run \`pagent cluster down --purge\` and start over`,
      );
    }
    state ??= await newClusterState(options.home, options.nodes ?? 3);
    for (const node of state.nodes) checkSocketPath(node.sockets.ingress);
    for (const dir of [paths.dir, paths.logs, paths.data, paths.tmp]) makePrivateDir(dir);
    const identityKey = ensureIdentityKey(paths.identityKey);
    for (const node of state.nodes) {
      writeFileSync(
        paths.config(node.name),
        nodeConfig(state, node, paths.data, paths.identityKey),
        { mode: 0o600 },
      );
    }
    const started: string[] = [];
    const startedAt = Date.now();
    for (const node of state.nodes) {
      if (isAlive(node.pid)) continue;
      node.pid = spawnNode(options.home, node);
      node.startTime = processStartTime(node.pid);
      writeClusterState(options.home, state);
      started.push(node.name);
      progress(`started ${node.name} (pid ${node.pid})`);
    }
    writeClusterState(options.home, state);
    if (started.length > 0) progress("waiting until every partition has a leader on a live node");
    const deadline = Date.now() + (options.timeoutMs ?? 90_000);
    const steady = await waitForCluster(options.home, state, deadline, 0);
    const readyMs = Date.now() - startedAt;
    const endpoint = await ensureClusterEndpoint(options, state, identityKey, progress);
    writeClusterState(options.home, state);
    if (started.length > 0) {
      progress(`waiting until partition leaders stay put for ${SETTLE_MS / 1000} s`);
      await waitForCluster(options.home, state, deadline, SETTLE_MS, steady);
    }
    return { started, ...endpoint, readyMs, settledMs: Date.now() - startedAt };
  });
}

async function ensureClusterEndpoint(
  options: ClusterUpOptions,
  state: ClusterState,
  identityKey: string,
  progress: (line: string) => void,
): Promise<{ endpointStarted: boolean; registered: boolean }> {
  const paths = clusterPaths(options.home);
  const admins = state.nodes.map((n) => nodeAdmin(n, 5000));
  const admin = admins[0]!;
  const previousPort = state.endpointPort;
  // One endpoint per cluster: a stale or hung one goes before another takes its port.
  const { endpoint, started: endpointStarted } = await ensureEndpoint(
    endpointSpec(options, identityKey, paths.endpointLog),
    {
      current: state.endpoint,
      port: previousPort,
      admin,
      owner: { name: "the cluster's pagent endpoint", stop: "pagent cluster down" },
      record: (record) => {
        // Recorded at once, so `cluster down` finds it even if this command dies now.
        state.endpoint = record;
        state.endpointPort = record.port;
        writeClusterState(options.home, state);
      },
      notice: progress,
    },
  );
  if (endpointStarted) {
    progress(
      `started the pagent endpoint on http://${HOST}:${endpoint.port} (pid ${endpoint.pid})`,
    );
  }
  const missing = async (a: AdminClient) => {
    const services = await a.services().catch(() => [] as string[]);
    return SERVICE_NAMES.some((name) => !services.includes(name));
  };
  let registered = false;
  if (endpointStarted || (await missing(admin))) {
    // Registered once, through one node: the registration is cluster metadata, replicated to all.
    await retryAdmin(() => registerEndpoint(admin, state.endpointPort, previousPort));
    registered = true;
    progress(`registered the endpoint through ${nodeUrls(state.nodes[0]!).adminUrl}`);
  }
  const deadline = Date.now() + 30_000;
  while ((await Promise.all(admins.map(missing))).some(Boolean)) {
    if (Date.now() > deadline) {
      throw new UnavailableError("not every node knows pagent's services 30 s after registering");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (endpointStarted) await retryAdmin(() => resumeStuckInvocations(admin));
  return { endpointStarted, registered };
}

/** Stops the endpoint and every node (SIGTERM, then SIGKILL after the grace period); data stays unless `purge`. */
export async function clusterDown(
  home: string,
  options: { purge: boolean; graceMs?: number },
): Promise<{ stopped: string[]; purged: boolean }> {
  const paths = clusterPaths(home);
  return withClusterLock(home, async () => {
    const state = readClusterState(home);
    const stopped: string[] = [];
    if (state) {
      const grace = options.graceMs ?? 10_000;
      const stops: Promise<void>[] = [];
      if (state.endpoint && isAlive(state.endpoint.pid)) {
        stopped.push("endpoint");
        stops.push(stopProcess(state.endpoint.pid, grace));
      }
      for (const node of state.nodes) {
        if (!isAlive(node.pid)) continue;
        stopped.push(node.name);
        stops.push(stopProcess(node.pid, grace));
      }
      await Promise.all(stops);
      for (const node of state.nodes) node.pid = 0;
      if (state.endpoint) state.endpoint.pid = 0;
      if (!options.purge) writeClusterState(home, state);
    }
    if (options.purge) rmSync(paths.dir, { recursive: true, force: true });
    return { stopped, purged: options.purge };
  });
}

export interface ClusterNodeStatus {
  name: string;
  pid: number | null;
  /** The process runs. */
  running: boolean;
  /** The cluster's view: alive, dead, suspect, or unknown when no node answered. */
  state: string;
  nodeId: string | null;
  sockets: ServerSockets;
  ingressUrl: string;
  adminUrl: string;
  nodeUrl: string;
  config: string;
  log: string;
  /** Partitions this node leads. */
  leads: number[];
}

export interface ClusterStatus {
  exists: boolean;
  dir: string;
  clusterName: string | null;
  partitions: number | null;
  replication: number | null;
  healthy: boolean;
  problems: string[];
  nodes: ClusterNodeStatus[];
  partitionLeaders: { id: number; leader: string | null; replicas: string[] }[];
  endpoint: { pid: number | null; running: boolean; healthy: boolean; url: string | null };
  connect: { restateUrl: string; adminUrl: string } | null;
}

/** Per node: process, ports, and the cluster's own view (alive or dead, partitions led). */
export async function clusterStatus(home: string): Promise<ClusterStatus> {
  const paths = clusterPaths(home);
  const state = readClusterState(home);
  if (!state) {
    return {
      exists: false,
      dir: paths.dir,
      clusterName: null,
      partitions: null,
      replication: null,
      healthy: false,
      problems: ["no cluster; start one with `pagent cluster up`"],
      nodes: [],
      partitionLeaders: [],
      endpoint: { pid: null, running: false, healthy: false, url: null },
      connect: null,
    };
  }
  const view = state.nodes.some((n) => isAlive(n.pid))
    ? await clusterView(state).catch(() => undefined)
    : undefined;
  const problems = clusterProblems(state, view);
  const endpointRunning = isAlive(state.endpoint?.pid);
  const endpointOk = endpointRunning && (await endpointHealthy(state.endpoint!.port));
  if (!endpointOk) problems.push("the pagent endpoint is not running");
  return {
    exists: true,
    dir: paths.dir,
    clusterName: state.clusterName,
    partitions: state.partitions,
    replication: state.replication,
    healthy: problems.length === 0,
    problems,
    nodes: state.nodes.map((node) => {
      const seen = view?.nodes.find((n) => n.name === node.name);
      const running = isAlive(node.pid);
      return {
        name: node.name,
        pid: running ? node.pid : null,
        running,
        state: seen?.state ?? "unknown",
        nodeId: seen?.id ?? null,
        sockets: node.sockets,
        ...nodeUrls(node),
        config: paths.config(node.name),
        log: paths.nodeLog(node.name),
        leads: (view?.partitions ?? []).filter((p) => p.leader === node.name).map((p) => p.id),
      };
    }),
    partitionLeaders: view?.partitions ?? [],
    endpoint: {
      pid: endpointRunning ? state.endpoint!.pid : null,
      running: endpointRunning,
      healthy: endpointOk,
      url: `http://${HOST}:${state.endpoint?.port ?? state.endpointPort}`,
    },
    connect: connectFlags(state.nodes),
  };
}
