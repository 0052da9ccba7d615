import assert from "node:assert/strict";
import { parseNetworkConfig } from "../config.ts";
import { formatIP4, formatIP4Net } from "../ip.ts";
import type { LeaseWatchResult } from "../mod.ts";
import { silentLogger } from "../../util/log.ts";
import { annotationsFor } from "./annotations.ts";
import { NodeLeaseState } from "./_node_state.ts";
import type { Node } from "./types.ts";

const A = annotationsFor();
const CONFIG = parseNetworkConfig('{"Network":"10.244.0.0/16"}', { validate: false });

function n(name: string, cidr: string, ip: string, managed = true): Node {
  return {
    metadata: {
      name,
      annotations: {
        [A.backendData]: "null",
        [A.backendType]: "host-gw",
        [A.backendPublicIP]: ip,
        ...(managed && { [A.subnetKubeManaged]: "true" }),
      },
    },
    spec: { podCIDR: cidr },
  };
}

function show(r: LeaseWatchResult | undefined): string[] {
  if (!r) return [];
  const f = (l: { subnet: { ip: number; prefix: number }; attrs: { publicIP: number } }) =>
    `${formatIP4Net(l.subnet)}@${formatIP4(l.attrs.publicIP)}`;
  return r.snapshot
    ? r.snapshot.map((l) => `snap ${f(l)}`)
    : r.events!.map((e) => `${e.type} ${f(e.lease)}`);
}

Deno.test("NodeLeaseState coalesces changes to the latest state per node", () => {
  const s = new NodeLeaseState(CONFIG, A, silentLogger);
  s.replace([n("a", "10.244.1.0/24", "1.1.1.1"), n("u", "10.244.9.0/24", "9.9.9.9", false)]);
  assert.deepEqual(show(s.take()), ["snap 10.244.1.0/24@1.1.1.1"]);
  for (let i = 0; i < 100; i++) s.apply("MODIFIED", n("a", "10.244.1.0/24", `1.1.1.${i}`));
  s.apply("ADDED", n("b", "10.244.2.0/24", "2.2.2.2"));
  s.apply("DELETED", n("b", "10.244.2.0/24", "2.2.2.2"));
  assert.deepEqual(show(s.take()), ["added 10.244.1.0/24@1.1.1.99"], "b came and went");
  assert.equal(s.take(), undefined);
  s.apply("MODIFIED", n("a", "10.244.5.0/24", "1.1.1.99"));
  assert.deepEqual(show(s.take()), [
    "removed 10.244.1.0/24@1.1.1.99",
    "added 10.244.5.0/24@1.1.1.99",
  ]);
  s.apply("MODIFIED", n("a", "10.244.5.0/24", "1.1.1.99", false));
  assert.deepEqual(show(s.take()), ["removed 10.244.5.0/24@1.1.1.99"], "no longer managed");
  s.apply("MODIFIED", n("a", "10.244.5.0/24", "1.1.1.99"));
  s.apply("MODIFIED", { metadata: { name: "a", annotations: { [A.subnetKubeManaged]: "true" } } });
  assert.deepEqual(show(s.take()), ["added 10.244.5.0/24@1.1.1.99"], "bad update keeps the last");
  s.replace([]);
  assert.deepEqual(show(s.take()), []);
  assert.equal(s.size, 0);
});
