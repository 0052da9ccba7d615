/**
 * `deno task bench`: every benchmark, each printing its figure as a ratio against a reference
 * measured in the same run. Figures are printed, never asserted. Root-only benchmarks (network
 * namespaces) say so and skip without root.
 */
import { benchStartup } from "./startup.ts";
import { benchHostGw } from "./host_gw.ts";
import { benchUdp } from "./udp.ts";
import { benchVxlan } from "./vxlan.ts";
import { benchVxlan6 } from "./vxlan6.ts";
import { benchKube } from "./kube.ts";
import { benchScale } from "./scale.ts";

console.log("benchmark".padEnd(46), "measured".padEnd(34), "ratio".padEnd(14), "target");
await benchStartup();
await benchHostGw();
await benchVxlan();
await benchVxlan6();
await benchUdp();
await benchKube();
await benchScale();
