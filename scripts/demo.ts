/**
 * `deno task demo`: a three-host flannel network on this machine, in network namespaces (root,
 * Linux). Builds the test bed with a local etcd, runs the agent on each host with host-gw,
 * prints each host's subnet.env and routes and a cross-host ping, then tears everything down.
 */
import { ping, TestBed } from "../test/testbed.ts";

if (Deno.uid() !== 0) {
  console.error("The demo creates network namespaces: run it as root (sudo deno task demo).");
  Deno.exit(1);
}

const config = '{"Network":"10.100.0.0/16","SubnetLen":24,"Backend":{"Type":"host-gw"}}';
console.log(`Network config (etcd key /coreos.com/network/config):\n  ${config}\n`);
await using bed = await TestBed.create({ hosts: 3, config });
console.log(
  `etcd at ${bed.etcdEndpoint}; hosts ${bed.hosts.map((h) => `${h.name}=${h.ip}`).join(", ")}`,
);
console.log("Starting flanneld on every host...\n");
await bed.startAgents();
for (const h of bed.hosts) await h.addPod();
await new Promise((r) => setTimeout(r, 300));

for (const h of bed.hosts) {
  console.log(`── ${h.name} (${h.ip}) ─ subnet.env`);
  console.log((await Deno.readTextFile(h.subnetFile)).trimEnd().replace(/^/gm, "  "));
  console.log(`── ${h.name} ─ ip route`);
  console.log((await h.routes()).join("\n").replace(/^/gm, "  "));
  console.log();
}
const [a, b] = [bed.hosts[0], bed.hosts[2]];
const ok = await ping(a.pods[0], b.pods[0].ip, 3);
console.log(
  `ping from a pod on ${a.name} (${a.pods[0].ip}) to a pod on ${b.name} (${b.pods[0].ip}): ${
    ok ? "3/3 replies" : "FAILED"
  }`,
);
console.log("\nTearing down...");
if (!ok) Deno.exitCode = 1;
