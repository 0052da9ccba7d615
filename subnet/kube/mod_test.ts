import assert from "node:assert/strict";
import { parseIP6 } from "../ip.ts";
import { readNetConfig } from "./mod.ts";

async function withNetConf(text: string, fn: (path: string) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempFile({ prefix: "net-conf-", suffix: ".json" });
  try {
    await Deno.writeTextFile(path, text);
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("readNetConfig() reads dual-stack and IPv6-only net-conf.json", async (t) => {
  await t.step("IPv6 only", () =>
    withNetConf(
      '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan"}}',
      async (path) => {
        const c = await readNetConfig(path);
        assert.equal(c.enableIPv4, false);
        assert.equal(c.enableIPv6, true);
        assert.deepEqual(c.ipv6Network, { ip: parseIP6("fd00:10:244::"), prefix: 56 });
      },
    ));
  await t.step(
    "IPv6 only but EnableIPv4 left at its default: the hint names it",
    () =>
      withNetConf('{"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"}', async (path) => {
        await assert.rejects(readNetConfig(path), (e: Error) => {
          assert.equal(
            e.message,
            `error parsing subnet config: ${path}: IPv4 is enabled but "Network" is missing: set ` +
              `it to the cluster's pod CIDR, e.g. "Network": "10.244.0.0/16", or for an IPv6-only ` +
              `cluster set "EnableIPv4": false (it defaults to true)`,
          );
          return true;
        });
      }),
  );
  await t.step(
    "EnableIPv6 without IPv6Network",
    () =>
      withNetConf('{"Network":"10.244.0.0/16","EnableIPv6":true}', async (path) => {
        await assert.rejects(readNetConfig(path), /IPv6 is enabled but "IPv6Network" is missing/);
      }),
  );
});
