import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  clusterProblems,
  connectFlags,
  nodeConfig,
  type ClusterState,
  type ClusterView,
} from "../../src/restate/cluster.js";
import { restateBinary } from "../../src/restate/server.js";

const state: ClusterState = {
  clusterName: "pagent-local",
  partitions: 4,
  replication: 2,
  endpointPort: 9080,
  nodes: [1, 2, 3].map((index) => ({
    index,
    name: `node-${index}`,
    pid: 0,
    sockets: {
      ingress: `/data/node-${index}/ingress.sock`,
      admin: `/data/node-${index}/admin.sock`,
      node: `/data/node-${index}/fabric.sock`,
    },
  })),
};

const dir = mkdtempSync(path.join(tmpdir(), "pagent-cluster-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `key = value` lines by table ("" for the top level); arrays spread over lines are joined. */
function tomlKeys(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  let table = "";
  let open: string | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/^\s+|\s+$/g, "");
    if (open) {
      keys.set(open, `${keys.get(open)!} ${line}`);
      if (line.startsWith("]")) open = undefined;
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      table = header[1]!;
      continue;
    }
    const match = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    const key = table ? `${table}.${match[1]}` : match[1]!;
    keys.set(key, match[2]!);
    if (match[2] === "[") open = key;
  }
  return keys;
}

/** What restate-server made of a config file: unknown keys vanish from this without a warning. */
function dumped(config: string): Map<string, string> {
  const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(file, config);
  return tomlKeys(
    execFileSync(restateBinary(), ["--config-file", file, "--dump-config"], { encoding: "utf8" }),
  );
}

describe("the local cluster's node config", () => {
  it("uses only keys restate-server 1.7 knows, in the tables it reads them from", () => {
    for (const node of state.nodes) {
      const written = tomlKeys(nodeConfig(state, node, "/data", "/key.pem"));
      const effective = dumped(nodeConfig(state, node, "/data", "/key.pem"));
      const unknown = [...written.keys()].filter((key) => !effective.has(key));
      expect(unknown, `keys restate-server ignored for ${node.name}`).toEqual([]);
    }
  });

  it("takes effect: one cluster, node 1 provisions, replication 2, every node's metadata address", () => {
    const first = dumped(nodeConfig(state, state.nodes[0]!, "/data", "/key.pem"));
    const second = dumped(nodeConfig(state, state.nodes[1]!, "/data", "/key.pem"));
    expect(first.get("cluster-name")).toBe('"pagent-local"');
    expect(first.get("auto-provision")).toBe("true");
    expect(second.get("auto-provision")).toBe("false");
    expect(first.get("default-replication")).toBe("2");
    expect(first.get("default-num-partitions")).toBe("4");
    expect(first.get("gossip-suspect-interval")).toBe('"500ms"');
    expect(first.get("bifrost.default-provider")).toBe('"replicated"');
    expect(first.get("listen-mode")).toBe('"unix"');
    expect(first.get("advertised-address")).toBe('"unix:/data/node-1/fabric.sock"');
    expect(second.get("worker.invoker.request-identity-private-key-pem-file")).toBe('"/key.pem"');
    for (const index of [1, 2, 3]) {
      expect(second.get("metadata-client.addresses")).toContain(
        `"unix:/data/node-${index}/fabric.sock"`,
      );
    }
  });

  it("connect flags list every node, node 1 first, admin URLs in the same order", () => {
    expect(connectFlags(state.nodes)).toEqual({
      restateUrl:
        "unix:/data/node-1/ingress.sock,unix:/data/node-2/ingress.sock,unix:/data/node-3/ingress.sock",
      adminUrl:
        "unix:/data/node-1/admin.sock,unix:/data/node-2/admin.sock,unix:/data/node-3/admin.sock",
    });
  });
});

describe("clusterProblems", () => {
  const running: ClusterState = {
    ...state,
    nodes: state.nodes.map((n) => ({ ...n, pid: process.pid })),
  };
  const view = (leaders: (string | null)[], dead: string[] = []): ClusterView => ({
    answeredBy: "node-1",
    nodes: state.nodes.map((n, i) => ({
      name: n.name,
      id: `N${i + 1}`,
      state: dead.includes(n.name) ? "dead" : "alive",
    })),
    partitions: leaders.map((leader, id) => ({ id, leader, replicas: [] })),
  });

  it("none when every node is alive and every partition has a live leader", () => {
    expect(clusterProblems(running, view(["node-1", "node-2", "node-3", "node-1"]))).toEqual([]);
  });

  it("a partition without a leader, or led by a dead node, or too few partitions", () => {
    expect(clusterProblems(running, view(["node-1", null, "node-3"], ["node-3"])).sort()).toEqual(
      [
        "3 of 4 partitions exist",
        "node-3 is not (yet) alive in the cluster",
        "partition 1 has no leader on a live node",
        "partition 2 has no leader on a live node",
      ].sort(),
    );
  });

  it("a node whose process is gone, even while the cluster still calls it alive", () => {
    const killed: ClusterState = {
      ...running,
      nodes: running.nodes.map((n) => (n.name === "node-2" ? { ...n, pid: 0 } : n)),
    };
    expect(clusterProblems(killed, view(["node-1", "node-2", "node-3", "node-1"]))).toEqual([
      "node-2 is not running",
      "partition 1 has no leader on a live node",
    ]);
  });
});
